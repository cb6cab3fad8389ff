#!/usr/bin/env bash
# tests/integration/mkcerts.sh DIR — throwaway certificates for TLS tests (EC P-256, openssl CLI).
#
# Writes into DIR (created if missing):
#   ca.pem ca.key              the test CA ("riptide test CA")
#   server.pem server.key      leaf signed by ca: CN mx.test,
#                              SAN DNS:mx.test,DNS:localhost,IP:127.0.0.1,IP:::1
#   server-chain.pem           server.pem + ca.pem (for peers that want a chain file)
#   server-combined.pem        server.key + server.pem + ca.pem (Postfix smtpd_tls_chain_files)
#   other-ca.pem other-ca.key  a second, unrelated CA
#   other.pem other.key        CN/SAN mx.test signed by other-ca (an "unknown CA" for ca.pem)
#   wrongname.pem wrongname.key  CN/SAN wrong.test signed by ca (a host name mismatch)
#   expired.pem expired.key    CN/SAN mx.test signed by ca, valid 2020-01-01..2020-01-02
# Keys are mode 0600. Idempotent: when every file is there already, nothing is redone (remove
# DIR to start over). Prints nothing on success; exit status non-zero on failure.
#
# Why a script: unit tests (tests/unit/tls), integration tests and manual runs against swaks,
# openssl s_client/s_server or Postfix all need the same small PKI, made at test time.
set -euo pipefail
dir=${1:?usage: mkcerts.sh DIR}
mkdir -p "$dir"
cd "$dir"
all=(ca.pem ca.key server.pem server.key server-chain.pem server-combined.pem other-ca.pem
	other-ca.key other.pem other.key wrongname.pem wrongname.key expired.pem expired.key)
done=1
for f in "${all[@]}"; do [ -s "$f" ] || done=0; done
[ $done = 1 ] && exit 0
umask 077
work=$(mktemp -d mkcerts.XXXXXX)
trap 'rm -rf "$work"' EXIT

# key FILE: a new EC P-256 key
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# ca NAME CN: a self-signed CA valid 10 years
ca() {
	key "$work/$1.key"
	openssl req -x509 -new -key "$work/$1.key" -subj "/O=riptide tests/CN=$2" -days 3650 \
		-sha256 -addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,keyCertSign,cRLSign -out "$work/$1.pem" 2>/dev/null
}

# leaf NAME CA CN SAN: a server certificate signed by CA, valid 2 years
leaf() {
	key "$work/$1.key"
	openssl req -new -key "$work/$1.key" -subj "/O=riptide tests/CN=$3" \
		-out "$work/$1.csr" 2>/dev/null
	printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n%s\n%s\n' \
		'extendedKeyUsage=serverAuth,clientAuth' "subjectAltName=$4" >"$work/$1.ext"
	openssl x509 -req -in "$work/$1.csr" -CA "$work/$2.pem" -CAkey "$work/$2.key" \
		-CAcreateserial -days 730 -sha256 -extfile "$work/$1.ext" \
		-out "$work/$1.pem" 2>/dev/null
}

# expired NAME CA CN SAN: like leaf, but valid only on 2020-01-01 (openssl ca sets the dates)
expired() {
	key "$work/$1.key"
	openssl req -new -key "$work/$1.key" -subj "/O=riptide tests/CN=$3" \
		-out "$work/$1.csr" 2>/dev/null
	mkdir -p "$work/db"
	: >"$work/db/index.txt"
	cat >"$work/ca.cnf" <<EOF
[ca]
default_ca = tca
[tca]
database = $work/db/index.txt
new_certs_dir = $work/db
serial = $work/db/serial
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
[anything]
commonName = supplied
organizationName = optional
[ext]
basicConstraints = CA:FALSE
subjectAltName = $4
EOF
	echo 1000 >"$work/db/serial"
	openssl ca -batch -config "$work/ca.cnf" -cert "$work/$2.pem" -keyfile "$work/$2.key" \
		-startdate 20200101000000Z -enddate 20200102000000Z -extensions ext -notext \
		-in "$work/$1.csr" -out "$work/$1.pem" 2>/dev/null
}

ca ca "riptide test CA"
ca other-ca "riptide other CA"
leaf server ca mx.test "DNS:mx.test,DNS:localhost,IP:127.0.0.1,IP:::1"
leaf other other-ca mx.test "DNS:mx.test"
leaf wrongname ca wrong.test "DNS:wrong.test"
expired expired ca mx.test "DNS:mx.test"
cat "$work/server.pem" "$work/ca.pem" >"$work/server-chain.pem"
cat "$work/server.key" "$work/server.pem" "$work/ca.pem" >"$work/server-combined.pem"
chmod 644 "$work"/*.pem
chmod 600 "$work"/*.key "$work/server-combined.pem"
for f in "${all[@]}"; do mv -f "$work/$f" "$f"; done
