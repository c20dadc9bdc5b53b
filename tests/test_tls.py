"""TLS for game clients (issue 16): a gateway with tls = on, its local CA
and certificate made by deploy/ringgate up.

- play: a Python client and the CLI that trust the CA log in and play; a
  wrong CA and a wrong host name are refused with a clear error (Python and
  CLI); a plaintext client on the TLS port is cut off cleanly; the metrics
  count handshakes and failures by reason.
- expired: an expired certificate (loaded by SIGHUP) is refused with
  "certificate has expired"; a reload with a missing file keeps the old
  certificate; reloading a good one heals.
- plain_port: a TLS client on a plaintext gateway is cut off cleanly and
  the gateway goes on serving plaintext clients.
- wss: with tls = on the WebSocket port is wss: a client that trusts the CA
  plays over it and gets the world page over HTTPS; a plain WebSocket
  client is cut off cleanly.
- reload_under_load: clients keep playing over TLS while the certificate is
  reloaded again and again; no request is lost, nobody is dropped, and new
  clients get the new certificate.
- bad_config: a gateway told --tls=on without a certificate, with a missing
  file or with a key that does not match refuses to start, saying why.
"""
import os
import shutil
import ssl
import subprocess
import threading

import ringgate_test as rt
from ringgate_test import expect, eventually
from ringgate_test.base import SOURCE_DIR
from ringgate_test.conn import Closed

TLS_ON = {"RINGGATE_GATEWAY_TLS": "on"}
FAILURES = 'ringgate_gateway_tls_handshake_failures_total{reason="%s"}'
HANDSHAKES = 'ringgate_gateway_tls_handshakes_total{version="TLSv1.3"}'


def test_certs(cluster):
    """The refusal tests' certificates (other CA, expired, wrong host,
    second server), made beside the local CA deploy made, signed by it."""
    subprocess.run([os.path.join(SOURCE_DIR, "tools", "tls-certs.sh"),
                    os.path.dirname(cluster.ca_file), "--test"], check=True)
    return os.path.dirname(cluster.ca_file)


def refused(cluster, ca_file, server_name, want):
    """A TLS client is refused, and the error says `want`."""
    try:
        client = cluster.client("refused", ca_file=ca_file, server_name=server_name)
    except ssl.SSLError as err:
        rt.log("refused as expected: %s" % err)
        assert want in str(err), err
        return
    client.close()
    raise AssertionError("a client trusting %s for %s was let in" % (ca_file, server_name))


def play(client, name):
    expect(client.login(name, name + "-pw"), "login")
    expect(client.move(5, 6), "move")
    assert expect(client.earn(7), "earn").gold == 7
    expect(client.ping(), "pong")


def run_cli(build_dir, port, *args):
    cli = os.path.join(build_dir, "tools", "cli", "ringgate-cli")
    proc = subprocess.run([cli, "--port", str(port)] + list(args),
                          input="login carol c-pw\nearn 3\nlogout\nquit\n", text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    print("--- ringgate-cli %s (exit %d):\n%s" % (" ".join(args), proc.returncode, proc.stdout))
    return proc


def case_play(build_dir):
    with rt.Cluster(build_dir, extra_env=TLS_ON) as cluster:
        certs = test_certs(cluster)
        alice = cluster.client("alice", ca_file=cluster.ca_file)
        play(alice, "alice")
        assert alice.sock.version() == "TLSv1.3", alice.sock.version()
        # By IP address too: the certificate names 127.0.0.1.
        bob = cluster.client("bob", ca_file=cluster.ca_file, server_name="127.0.0.1")
        play(bob, "bob")

        refused(cluster, os.path.join(certs, "other-ca.pem"), "localhost",
                "unable to get local issuer certificate")
        refused(cluster, cluster.ca_file, "elsewhere.invalid", "Hostname mismatch")

        # A plaintext client on the TLS port: cut off, no reply, no hang.
        plain = cluster.client("plain")
        plain.seq += 1
        plain.send(rt.client_pb2.ClientMessage(
            seq=plain.seq, login=rt.client_pb2.LoginRequest(name="mallory", password=b"x")))
        plain.wait_closed(only=())

        proc = run_cli(build_dir, cluster.gateway_port, "--ca-file", cluster.ca_file,
                       "--host", "127.0.0.1", "--server-name", "localhost")
        assert proc.returncode == 0 and "< earn ok gold=3" in proc.stdout, proc.stdout
        proc = run_cli(build_dir, cluster.gateway_port, "--ca-file",
                       os.path.join(certs, "other-ca.pem"))
        assert proc.returncode == 1, proc.returncode
        assert "certificate of 127.0.0.1 refused: unable to get local issuer certificate" \
            in proc.stdout, proc.stdout

        # Still playing after all that.
        expect(alice.ping(), "pong")

        def counted():
            m = cluster.metrics("gateway")
            return (m.get(HANDSHAKES, 0) >= 3 and m.get(FAILURES % "peer_alert", 0) >= 3
                    and m.get(FAILURES % "protocol", 0) >= 1)
        eventually(counted, what="TLS handshakes and failures in the gateway's metrics")
        m = cluster.metrics("gateway")
        assert m['ringgate_net_disconnects_total{reason="tls"}'] >= 4, m


def replace_cert(cluster, certs, name):
    """Put certificate `name` of directory certs where the gateway reads
    its own (certs/server.pem), and SIGHUP it."""
    for ext in (".pem", ".key"):
        shutil.copy(os.path.join(certs, name + ext), os.path.join(certs, "server" + ext))
    cluster.deploy("reload")


def reloads(cluster, result):
    return cluster.metrics("gateway").get(
        'ringgate_gateway_tls_reloads_total{result="%s"}' % result, 0)


def case_expired(build_dir):
    with rt.Cluster(build_dir, extra_env=TLS_ON) as cluster:
        certs = test_certs(cluster)
        early = cluster.client("early", ca_file=cluster.ca_file)
        expect(early.login("early", "e-pw"), "login")

        replace_cert(cluster, certs, "expired")
        eventually(lambda: reloads(cluster, "ok") == 1, what="the expired certificate loaded")
        refused(cluster, cluster.ca_file, "localhost", "certificate has expired")
        # Whoever was in before keeps the certificate they started with.
        expect(early.ping(), "pong")

        # A reload that cannot read its files changes nothing.
        os.remove(os.path.join(certs, "server.pem"))
        cluster.deploy("reload")
        eventually(lambda: reloads(cluster, "failed") == 1, what="a failed reload counted")
        assert "TLS certificate not reloaded, the old one stays in use" in \
            cluster.log_text("gateway")
        refused(cluster, cluster.ca_file, "localhost", "certificate has expired")

        replace_cert(cluster, certs, "server2")
        eventually(lambda: reloads(cluster, "ok") == 2, what="a good certificate reloaded")
        play(cluster.client("late", ca_file=cluster.ca_file), "late")


def case_plain_port(build_dir):
    with rt.Cluster(build_dir) as cluster:
        # A CA to trust: the test certificates (the cluster has none).
        certs = rt.temp_dir("ringgate-certs-")
        subprocess.run([os.path.join(SOURCE_DIR, "tools", "tls-certs.sh"), certs], check=True)
        try:
            cluster.client("tls", ca_file=os.path.join(certs, "ca.pem")).close()
        except (ssl.SSLError, ConnectionError, Closed, OSError) as err:
            rt.log("cut off as expected: %r" % err)
        else:
            raise AssertionError("a TLS handshake succeeded on a plaintext port")
        play(cluster.client("plain"), "plain")


def case_wss(build_dir):
    with rt.Cluster(build_dir, extra_env=TLS_ON) as cluster:
        ws = cluster.ws_client("wss", ca_file=cluster.ca_file)
        assert ws.sock.version() == "TLSv1.3", ws.sock.version()
        play(ws, "wss_player")
        page = rt.dial(cluster.ws_port, ca_file=cluster.ca_file)
        page.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        status, headers, _, _ = rt.ws.read_response(page)
        assert status == 200 and headers["content-type"].startswith("text/html"), headers
        page.close()
        try:
            cluster.ws_client("plain-ws").close()
        except (AssertionError, ConnectionError, Closed, OSError) as err:
            rt.log("plain WebSocket cut off as expected: %r" % err)
        else:
            raise AssertionError("a plain WebSocket upgrade succeeded on the wss port")
        expect(ws.ping(), "pong")


def case_reload_under_load(build_dir):
    with rt.Cluster(build_dir, extra_env=TLS_ON) as cluster:
        certs = test_certs(cluster)
        # The first certificate as "server1", to switch back to.
        for ext in (".pem", ".key"):
            shutil.copy(os.path.join(certs, "server" + ext), os.path.join(certs, "server1" + ext))
        players = [cluster.client("p%d" % i, ca_file=cluster.ca_file) for i in range(8)]
        for i, p in enumerate(players):
            expect(p.login("p%d" % i, "pw%d" % i), "login")
        stop = threading.Event()
        done = [0] * len(players)
        errors = []

        def keep_playing(i, p):
            try:
                while not stop.is_set():
                    expect(p.earn(1), "earn")
                    done[i] += 1
            except Exception as err:  # noqa: BLE001 - reported below
                errors.append("p%d: %r" % (i, err))

        threads = [threading.Thread(target=keep_playing, args=(i, p), daemon=True)
                   for i, p in enumerate(players)]
        for t in threads:
            t.start()
        for n in range(6):
            replace_cert(cluster, certs, "server2" if n % 2 == 0 else "server1")
            eventually(lambda n=n: reloads(cluster, "ok") == n + 1, what="reload %d" % (n + 1))
            # A new client during the reloads gets in too.
            play(cluster.client("new%d" % n, ca_file=cluster.ca_file), "new%d" % n)
        stop.set()
        for t in threads:
            t.join(30)
        assert not errors, errors
        assert all(d > 0 for d in done), done
        rt.log("requests answered during the reloads: %s" % done)
        # Every earn was applied: the gold is the count of answers.
        for i, p in enumerate(players):
            assert expect(p.earn(1), "earn").gold == done[i] + 1, (i, done[i])
        m = cluster.metrics("gateway")
        assert m.get('ringgate_net_disconnects_total{reason="tls"}', 0) == 0, m


def case_bad_config(build_dir):
    certs = rt.temp_dir("ringgate-certs-")
    subprocess.run([os.path.join(SOURCE_DIR, "tools", "tls-certs.sh"), certs, "--test"],
                   check=True)
    gateway = [os.path.join(build_dir, "gateway", "gateway"), "--insecure-no-auth",
               "--admin-port", "0", "--port", "0", "--tls=on"]
    for flags, status, says in (
            ([], 2, "--tls on needs --tls-cert and --tls-key"),
            (["--tls-cert", os.path.join(certs, "missing.pem"), "--tls-key",
              os.path.join(certs, "server.key")], 1, "missing.pem"),
            (["--tls-cert", os.path.join(certs, "server2.pem"), "--tls-key",
              os.path.join(certs, "server.key")], 1,
             "key values mismatch")):
        r = subprocess.run(gateway + flags, capture_output=True, text=True, timeout=30,
                           stdin=subprocess.DEVNULL)
        rt.log("gateway %s -> %d: %s" % (" ".join(flags), r.returncode, r.stderr.strip()))
        assert r.returncode == status and says in r.stderr, (flags, r.returncode, r.stderr)


rt.main(cases={"play": case_play, "expired": case_expired, "plain_port": case_plain_port,
               "wss": case_wss,
               "reload_under_load": case_reload_under_load, "bad_config": case_bad_config})
