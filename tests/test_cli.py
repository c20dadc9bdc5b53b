"""ringgate-cli scripted from a pipe against a real cluster: replies and
pushes come out as "< ..." lines, and --wait-ms lets a script see the
pushes that arrive after its last command."""
import os
import subprocess

import ringgate_test as rt
from ringgate_test import expect


def run_cli(build_dir, port, script, *args):
    cli = os.path.join(build_dir, "tools", "cli", "ringgate-cli")
    proc = subprocess.run([cli, "--port", str(port)] + list(args), input=script, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    print("--- ringgate-cli output (exit %d):\n%s" % (proc.returncode, proc.stdout))
    return proc


def hears(text):
    """A push carrying chat line `text`: a WorldUpdate (interest management)
    or a ChatLine (broadcast mode)."""
    return lambda m: (rt.body_of(m) == "update" and any(c.text == text for c in m.update.chat)
                      or rt.body_of(m) == "chat_line" and m.chat_line.text == text)


def sees_enter(name):
    """A push in which player `name` comes into view."""
    return lambda m: (rt.body_of(m) == "update" and any(p.name == name for p in m.update.entered)
                      or rt.body_of(m) == "joined" and m.joined.player.name == name)


def test(build_dir):
    with rt.Cluster(build_dir) as cluster:
        # A Python client watches the zone; the CLI plays.
        watcher = cluster.client("watcher")
        expect(watcher.login("watcher", "w-pw"), "login")

        proc = run_cli(build_dir, cluster.gateway_port,
                       "login heidi h-pw\nmove 3 4\nchat hello from the cli\nearn 15\n"
                       "ping\nmove 1e9 0\nfrobnicate\nlogout\nquit\n")
        assert proc.returncode == 0, proc.returncode
        out = proc.stdout.splitlines()
        for want in ("< login ok", "< move ok x=3.0 y=4.0 zone=1", "< chat ok", "< earn ok gold=15",
                     "< pong", "< error seq=6 code=OUT_OF_BOUNDS", "! unknown",
                     "< logout ok"):
            assert any(line.startswith(want) for line in out), "missing %r" % want
        assert any(line.startswith("<   other") and "name=watcher" in line for line in out)

        watcher.wait_push(hears("hello from the cli"), what="cli chat")

        # Pushes after the last command: the watcher chats while the CLI
        # waits; --wait-ms keeps it listening after its input ends.
        cli = os.path.join(build_dir, "tools", "cli", "ringgate-cli")
        listener = subprocess.Popen([cli, "--port", str(cluster.gateway_port), "--wait-ms",
                                     "60000"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    text=True)
        try:
            listener.stdin.write("login ivan i-pw\n")
            listener.stdin.close()
            assert listener.stdout.readline().startswith("< login ok")
            watcher.wait_push(sees_enter("ivan"), what="ivan entered the view")
            expect(watcher.chat("are you there, ivan?"), "chat")
            while True:
                line = listener.stdout.readline()
                assert line, "the CLI ended before the chat line arrived"
                if line.startswith("< chat_line") and "are you there, ivan?" in line:
                    break
        finally:
            listener.kill()
            listener.wait()


rt.main(test)
