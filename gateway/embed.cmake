# gateway/embed.cmake: cmake -DIN=file -DOUT=file.c -DSYM=name -P embed.cmake writes a C file
# defining `const unsigned char SYM[]` and `const size_t SYM_len` with the bytes of IN.
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" body "${body}")
file(WRITE ${OUT} "/* Generated from ${IN} by gateway/embed.cmake; do not edit. */\n#include <stddef.h>\nconst unsigned char ${SYM}[] = {\n${body}\n};\nconst size_t ${SYM}_len = ${len};\n")
