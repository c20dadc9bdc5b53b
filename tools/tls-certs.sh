#!/usr/bin/env bash
# tools/tls-certs.sh DIR [--test]: a local certificate authority and a
# server certificate for ringgate's TLS listeners, made with the openssl CLI.
#
#   DIR/ca.pem, DIR/ca.key          the local CA (clients trust ca.pem)
#   DIR/server.pem, DIR/server.key  the server's certificate (signed by the
#                                   CA, valid 825 days) and key, for the
#                                   names localhost and 127.0.0.1 (plus
#                                   RINGGATE_TLS_NAMES, a comma-separated
#                                   list of extra DNS names or IPs)
# With --test, also what the refusal tests need:
#   DIR/other-ca.pem                a CA that signed nothing here (a client
#                                   trusting only it must refuse the server)
#   DIR/expired.pem, expired.key    signed by the CA, expired yesterday
#   DIR/wrong-host.pem, .key        signed by the CA for "elsewhere.invalid"
#   DIR/server2.pem, server2.key    a second valid server certificate (reload)
#
# Files that exist are kept (the CA is made once per DIR). P-256 keys: fast
# to make and to handshake with. For a real deployment use a certificate
# from a real CA instead: see docs/tls.md.
set -euo pipefail

dir=${1:?usage: tls-certs.sh DIR [--test]}
test_extras=${2:-}
command -v openssl >/dev/null || { echo "tls-certs: openssl not found" >&2; exit 77; }
mkdir -p "$dir"
cd "$dir"
umask 077

newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# sign NAME CN SANS DAYS [CA]: NAME.pem/NAME.key signed by CA (default ca).
sign() {
	local name=$1 cn=$2 sans=$3 days=$4 ca=${5:-ca}
	[[ -s $name.pem ]] && return 0
	newkey "$name.key"
	openssl req -new -key "$name.key" -subj "/CN=$cn" -out "$name.csr" 2>/dev/null
	printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' \
		"$sans" >"$name.ext"
	# -days -1: notAfter is a day before now (an expired certificate).
	openssl x509 -req -in "$name.csr" -CA "$ca.pem" -CAkey "$ca.key" -set_serial \
		"0x$(openssl rand -hex 8)" -days "$days" -extfile "$name.ext" -out "$name.pem" 2>/dev/null
	rm -f "$name.csr" "$name.ext"
}

# make_ca NAME CN: a self-signed CA certificate NAME.pem with key NAME.key.
make_ca() {
	[[ -s $1.pem ]] && return 0
	newkey "$1.key"
	openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days 3650 \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
		-out "$1.pem" 2>/dev/null
}

sans="DNS:localhost,IP:127.0.0.1"
IFS=, read -ra extra <<<"${RINGGATE_TLS_NAMES:-}"
for name in "${extra[@]}"; do
	[[ -z $name ]] && continue
	if [[ $name =~ ^[0-9.]+$ || $name == *:* ]]; then sans+=",IP:$name"; else sans+=",DNS:$name"; fi
done

make_ca ca "ringgate local CA"
sign server localhost "$sans" 825
if [[ $test_extras == --test ]]; then
	make_ca other-ca "ringgate other CA"
	sign expired localhost "DNS:localhost,IP:127.0.0.1" -1
	sign wrong-host elsewhere.invalid "DNS:elsewhere.invalid" 825
	sign server2 localhost "DNS:localhost,IP:127.0.0.1" 825
fi
chmod 644 ./*.pem
