# cmake -DINPUT=<file> -DOUTPUT=<file.cpp> -DSYMBOL=<name> -DNAMESPACE=<ns> -P EmbedFile.cmake
# Writes a C++ source defining `std::string_view <NAMESPACE>::<SYMBOL>()` that returns the bytes of INPUT.
file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" hex_len)
math(EXPR size "${hex_len} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x..,){32})" "\\1\n" bytes "${bytes}")
file(WRITE "${OUTPUT}" "// Generated from ${INPUT} by cmake/EmbedFile.cmake; do not edit.\n#include <string_view>\nnamespace ${NAMESPACE} {\nnamespace {\nconst unsigned char kData[] = {\n${bytes}0x00};\n}  // namespace\nstd::string_view ${SYMBOL}() { return {reinterpret_cast<const char*>(kData), ${size}}; }\n}  // namespace ${NAMESPACE}\n")
