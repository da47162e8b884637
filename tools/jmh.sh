#!/usr/bin/env bash
# Builds the JMH benchmarks (module benchmarks) and runs them; arguments go to JMH, e.g.
#   tools/jmh.sh KernelBenchmarks.matmul -p dtype=int8 -p tokens=1
#   tools/jmh.sh -l                       # list the benchmarks
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$here/tools/jdk25.sh"
moec_select_jdk25 || exit 1
"$here/mvnw" -q -B -Dstyle.color=never -DskipTests install -pl benchmarks -am >&2
exec "$JAVA_HOME/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
  -cp "$here/benchmarks/target/classes:$here/benchmarks/target/lib/*" org.openjdk.jmh.Main "$@"
