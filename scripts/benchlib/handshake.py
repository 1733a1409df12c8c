"""The plugin handshake, plaintext and with a Terraform-shaped client certificate."""
import os
import subprocess
import time

COOKIE = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2"


def client_cert_pem(tmp):
    """A client certificate shaped like Terraform's: self-signed ECDSA P-521, a CA."""
    key, crt = os.path.join(tmp, "c.key"), os.path.join(tmp, "c.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521",
         "-sha512", "-nodes", "-keyout", key, "-out", crt, "-days", "1", "-subj", "/CN=localhost",
         "-addext", "basicConstraints=critical,CA:TRUE"],
        check=True, capture_output=True)
    with open(crt) as f:
        return f.read()


def handshake_ms(provider, env):
    t0 = time.perf_counter()
    p = subprocess.Popen([provider], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    line = p.stdout.readline()
    dt = (time.perf_counter() - t0) * 1000
    p.kill()
    p.wait()
    assert line.startswith(b"1|6|unix|"), line
    return dt


def handshakes(provider, tmp, runs):
    """`runs` handshakes in plaintext, then as many with AutoMTLS; their times (ms)."""
    base = dict(os.environ, TF_PLUGIN_MAGIC_COOKIE=COOKIE, PLUGIN_PROTOCOL_VERSIONS="5,6")
    plain = [handshake_ms(provider, base) for _ in range(runs)]
    tls_env = dict(base, PLUGIN_CLIENT_CERT=client_cert_pem(tmp))
    tls = [handshake_ms(provider, tls_env) for _ in range(runs)]
    return plain, tls
