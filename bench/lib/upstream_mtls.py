"""bench/lib/upstream_mtls.py: the mTLS-upstream setup that bench/proxy/run_tls --upstream-mtls
and bench/proxy/instructions --upstream-mtls share (issue 18's benchmark).

certs is a directory made by tests/tls/mkcerts.sh (ca.pem, server.pem/.key, client.pem/.key).
In front of the plaintext backend runs an nghttpx terminator that requires a client
certificate from that CA; each proxy calls it over mTLS, presenting client.pem:

  argv = upstream_mtls.terminator_argv(port, "127.0.0.1:%d" % backend_port, certs, errlog)
  meshd ... + upstream_mtls.meshd_args(certs)
  nghttpx ... "--backend=H,P;;proto=h2" + upstream_mtls.NGHTTPX_BACKEND_SUFFIX
          + upstream_mtls.nghttpx_args(certs)

Each benchmark starts and stops the processes its own way (by PID).
"""
import os

NGHTTPX_BACKEND_SUFFIX = ";tls;sni=localhost"  # the certificate's name (mkcerts.sh)


def terminator_argv(port, backend, certs, errlog, pidfile=None):
    """nghttpx on 127.0.0.1:port, one worker, TLS with a required client certificate, h2 to the
    plaintext backend ("host:port")."""
    host, bport = backend.rsplit(":", 1)
    argv = ["nghttpx", "--conf=/dev/null", "--workers=1", "--frontend=127.0.0.1,%d" % port,
            "--backend=%s,%s;;proto=h2" % (host, bport), "--verify-client",
            "--verify-client-cacert=" + os.path.join(certs, "ca.pem"),
            "--errorlog-file=" + errlog]
    if pidfile:
        argv.append("--pid-file=" + pidfile)
    return argv + [os.path.join(certs, "server.key"), os.path.join(certs, "server.pem")]


def meshd_args(certs):
    """meshd proxy's flags for an mTLS upstream."""
    return ["--tls-upstream-ca", os.path.join(certs, "ca.pem"),
            "--tls-upstream-cert", os.path.join(certs, "client.pem"),
            "--tls-upstream-key", os.path.join(certs, "client.key")]


def nghttpx_args(certs):
    """nghttpx's flags for an mTLS upstream (with NGHTTPX_BACKEND_SUFFIX on its --backend)."""
    return ["--cacert=" + os.path.join(certs, "ca.pem"),
            "--client-cert-file=" + os.path.join(certs, "client.pem"),
            "--client-private-key-file=" + os.path.join(certs, "client.key")]
