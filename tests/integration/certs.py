"""Throwaway certificates for TLS tests: a CA and server certificates for a domain, laid out as
<root>/certs/<domain>/{fullchain,privkey}.pem (seed 002's /data/certificates layout, and Let's Encrypt's)."""
import ssl
import socket
import struct
import subprocess


def _openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(root):
    ca_key, ca_crt = root / "ca.key", root / "ca.crt"
    if not ca_crt.exists():
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=poststack test CA",
                 "-keyout", str(ca_key), "-out", str(ca_crt))
    return ca_key, ca_crt


def issue(root, domain, name="server"):
    """A key and a certificate for `domain` (and 127.0.0.1) signed by the CA under `root`; returns
    (certificate path, key path, fullchain text)."""
    ca_key, ca_crt = make_ca(root)
    key, csr, crt = root / f"{name}.key", root / f"{name}.csr", root / f"{name}.crt"
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={domain}", "-keyout", str(key), "-out", str(csr))
    ext = root / "ext.cnf"
    ext.write_text(f"subjectAltName=DNS:{domain},IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key), "-CAcreateserial",
             "-days", "2", "-extfile", str(ext), "-out", str(crt))
    return crt, key, crt.read_text() + ca_crt.read_text()


def make_certs(root, domain, name="server"):
    """<root>/certs/<domain>/fullchain.pem and privkey.pem for a new key; returns (<root>/certs, CA certificate)."""
    crt, key, chain = issue(root, domain, name)
    target = root / "certs" / domain
    target.mkdir(parents=True, exist_ok=True)
    (target / "fullchain.pem").write_text(chain)
    (target / "privkey.pem").write_bytes(key.read_bytes())
    return root / "certs", root / "ca.crt"


def presented_certificate(host, port, timeout=5):
    """The DER certificate a PostgreSQL server presents (SSLRequest, then the TLS handshake, no verification)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(struct.pack("!ii", 8, 80877103))
        answer = sock.recv(1)
        if answer != b"S":
            raise AssertionError("the server at %s:%s does not take TLS (answered %r)" % (host, port, answer))
        with context.wrap_socket(sock) as tls:
            return tls.getpeercert(binary_form=True)


def der_of(pem_path):
    """The DER form of the first certificate in a PEM file (the server's own, in a fullchain)."""
    text = open(pem_path, encoding="ascii").read()
    end = text.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")
    return ssl.PEM_cert_to_DER_cert(text[:end])
