// The text form of a moec IR graph (.mir). Op names and dtypes are plain identifiers here: the parser
// checks them against the op table and the dtype list, so the table stays the one definition of both.
grammar Mir;


graph      : 'graph' GLOBAL '(' (input (',' input)* ','?)? ')' '{' statement* ret '}' EOF ;
input      : VALUE ':' type ;
statement  : param | node ;
param      : VALUE '=' 'param' STRING ':' type ;
node       : VALUE (',' VALUE)* '=' IDENT '(' (VALUE (',' VALUE)*)? ')' attrs? ':' type (',' type)* ;
ret        : 'return' (VALUE (',' VALUE)*)? ;

attrs      : '{' attr (',' attr)* '}' ;
attr       : IDENT '=' attrValue ;
attrValue  : INT | FLOAT | 'true' | 'false' | STRING | shape ;

type       : IDENT shape ;
shape      : '[' (dim (',' dim)*)? ']' ;
dim        : INT | IDENT | IDENT '*' INT ;

GLOBAL     : '@' [A-Za-z_] [A-Za-z0-9_.]* ;
VALUE      : '%' [A-Za-z0-9_.]+ ;
FLOAT      : '-'? DIGITS '.' DIGITS ([eE] [+-]? DIGITS)?
           | '-'? DIGITS [eE] [+-]? DIGITS
           | '-'? 'Infinity' | 'NaN' ;
INT        : '-'? DIGITS ;
IDENT      : [A-Za-z_] [A-Za-z0-9_]* ;
STRING     : '"' (~["\\\r\n] | '\\' ["\\])* '"' ;
fragment DIGITS : [0-9]+ ;
COMMENT    : '//' ~[\r\n]* -> skip ;
WS         : [ \t\r\n]+ -> skip ;
