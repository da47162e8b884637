# Sourced by ./mvnw and ./moec: finds a JDK 25 and exports JAVA_HOME, or explains what is missing.
# Order: MOEC_JAVA_HOME, JAVA_HOME (if it is 25), then the usual install places.
moec_java_major() {
  "$1/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p'
}
moec_select_jdk25() {
  local candidate
  for candidate in "${MOEC_JAVA_HOME:-}" "${JAVA_HOME:-}" /usr/lib/jvm/*25* /usr/lib/jvm/* \
                   "$HOME"/.sdkman/candidates/java/25* "$HOME"/.jdks/*25* /opt/java/*25* /opt/jdk*25*; do
    [ -n "$candidate" ] && [ -x "$candidate/bin/javac" ] || continue
    if [ "$(moec_java_major "$candidate")" = "25" ]; then
      export JAVA_HOME="$candidate"
      export PATH="$JAVA_HOME/bin:$PATH"
      return 0
    fi
  done
  cat >&2 <<MSG
moec: no JDK 25 found.
  Looked in: \$MOEC_JAVA_HOME, \$JAVA_HOME, /usr/lib/jvm/*, ~/.sdkman/candidates/java, ~/.jdks, /opt/java.
  Install one (e.g. Temurin 25: apt-get install temurin-25-jdk, or https://adoptium.net)
  or point MOEC_JAVA_HOME at it.
MSG
  return 1
}
