# cmake -DIN=schema_postgres.sql -DOUT=schema_postgres.c -P embed_schema.cmake
#
# Embed the PostgreSQL schema file in dbproxy as a NUL-terminated byte
# array (dbp__schema_postgres), so the .sql file stays the one definition
# that dbproxy and the tools both read.
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE "${OUT}"
  "/* Generated from schema_postgres.sql by embed_schema.cmake: do not edit. */\n"
  "extern const unsigned char dbp__schema_postgres[];\n"
  "const unsigned char dbp__schema_postgres[] = {${bytes}0x00};\n")
