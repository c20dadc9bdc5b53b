"""The world page in a real browser (headless Chromium through selenium):
two browser players log in on http://<gateway>:<ws-port>/, each sees the
other move (keyboard on one, a click on the other), chat crosses, earned
gold shows; a TCP client in the same zone and the browsers see each other.
A screenshot of each page is saved for CI to keep (the path is printed):
$RINGGATE_ARTIFACT_DIR, else <build>/Testing/artifacts/. Skipped (77) when
chromium, chromedriver or python3-selenium are missing."""
import os
import shutil

import ringgate_test as rt
from ringgate_test import body_of, expect

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def need_browser():
    try:
        from selenium import webdriver  # noqa: F401
    except ImportError:
        rt.skip("python3-selenium is not installed (apt-get install python3-selenium)")
    for path in (CHROMIUM, CHROMEDRIVER):
        if not shutil.which(path):
            rt.skip("%s is missing (apt-get install chromium chromium-driver)" % path)


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    # As root Chromium needs --no-sandbox; /dev/shm is small in containers.
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--disable-gpu", "--window-size=1000,800"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


def state(driver, expr):
    """A value of the page's state (window.ringgate), as JSON-able data."""
    return driver.execute_script("const rg = window.ringgate; return " + expr + ";")


def others(driver):
    """{name: (x, y)} of the players the page shows besides its own."""
    players = state(driver, "Array.from(rg.players.values())")
    return {p["name"]: (p["x"], p["y"]) for p in players}


def log_in(driver, url, name, password):
    from selenium.webdriver.common.by import By
    driver.get(url)
    rt.eventually(lambda: state(driver, "rg.ready"), what=name + "'s page loaded the proto")
    driver.find_element(By.ID, "name").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login-button").click()
    rt.eventually(lambda: state(driver, "rg.loggedIn"), what=name + " logged in")


def artifact_dir(build_dir):
    path = os.environ.get("RINGGATE_ARTIFACT_DIR") or os.path.join(build_dir, "Testing",
                                                                     "artifacts")
    os.makedirs(path, exist_ok=True)
    return path


def test(build_dir):
    need_browser()
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    # Chromium starting takes both cores of a small machine for seconds:
    # links with the test's 1 s dead time would drop under it.
    with rt.Cluster(build_dir, link_ms=(1000, 20000),
                    args={"gamesrv": ["--interest", "broadcast"]}) as c:
        url = "http://127.0.0.1:%d/" % c.ws_port
        alice = browser()
        bob = None
        try:
            bob = browser()
            log_in(alice, url, "alice", "alice-pw")
            log_in(bob, url, "bob", "bob-pw")
            rt.eventually(lambda: "bob" in others(alice), what="alice sees bob")
            rt.eventually(lambda: "alice" in others(bob), what="bob sees alice")

            # Alice walks right with the keyboard; bob sees her x grow.
            start_x = others(bob)["alice"][0]
            canvas = alice.find_element(By.ID, "world")
            canvas.click()
            for _ in range(3):
                canvas.send_keys(Keys.ARROW_RIGHT)
            rt.eventually(lambda: others(bob)["alice"][0] > start_x + 1e-3,
                          what="bob sees alice move right")

            # Bob clicks near the top-left corner; alice sees him there.
            zone = state(bob, "JSON.parse(JSON.stringify(rg.zone))")
            bcanvas = bob.find_element(By.ID, "world")
            size = bcanvas.size
            ActionChains(bob).move_to_element_with_offset(
                bcanvas, -size["width"] // 2 + 40, -size["height"] // 2 + 30).click().perform()
            want_x = zone["minX"] + 40 / size["width"] * (zone["maxX"] - zone["minX"])

            def bob_near_click():
                x, _ = others(alice)["bob"]
                return abs(x - want_x) < (zone["maxX"] - zone["minX"]) / 20
            rt.eventually(bob_near_click, what="alice sees bob where he clicked")

            # Chat both ways.
            alice.find_element(By.ID, "chat").send_keys("hello from alice")
            alice.find_element(By.ID, "chat-send").click()
            rt.eventually(lambda: any(l["text"] == "hello from alice"
                                      for l in state(bob, "rg.chat")), what="bob reads alice")
            bob.find_element(By.ID, "chat").send_keys("hi alice")
            bob.find_element(By.ID, "chat-send").click()
            rt.eventually(lambda: any(l["text"] == "hi alice" for l in state(alice, "rg.chat")),
                          what="alice reads bob")
            rt.eventually(lambda: "hi alice" in alice.find_element(By.ID, "chat-log").text,
                          what="the chat on alice's page")

            # Earn: the gold on the page is the saved total.
            alice.find_element(By.ID, "earn").click()
            alice.find_element(By.ID, "earn").click()
            rt.eventually(lambda: alice.find_element(By.ID, "gold").text == "20",
                          what="alice's page shows 20 gold")

            # A dropped WebSocket (docs/protocol.md, "Session resume"): the
            # page resumes on a new one and gets what was said meanwhile,
            # once. Only when the server hands out resume tokens.
            if state(alice, "rg.token !== null"):
                alice.execute_script("window.ringgate.dropConnection(4000)")
                rt.eventually(lambda: not state(alice, "rg.connected"), what="alice dropped")
                bob.find_element(By.ID, "chat").send_keys("said during the gap")
                bob.find_element(By.ID, "chat-send").click()
                rt.eventually(lambda: any(l["text"] == "said during the gap"
                                          for l in state(bob, "rg.chat")), what="bob's chat sent")
                assert not state(alice, "rg.connected"), "alice came back too soon"
                rt.eventually(lambda: state(alice, "rg.resumes") == 1 and
                              state(alice, "rg.loggedIn"), what="alice's page resumed")
                rt.eventually(lambda: [l["text"] for l in state(alice, "rg.chat")].count(
                    "said during the gap") == 1, what="the gap's chat, once")
                assert state(alice, "rg.replayed") >= 1, state(alice, "rg.replayed")
                assert state(alice, "rg.relogins") == 0, state(alice, "rg.relogins")
                rt.log("alice's page: " + alice.find_element(By.ID, "status").text)
            else:
                rt.log("the cluster gives no resume tokens: resume not exercised")

            # A TCP client in the same zone: it sees the browsers, they see it.
            tcp = c.client("carol")
            login = expect(tcp.login("carol", "carol-pw"), "login")
            assert {"alice", "bob"} <= {o.name for o in login.others}, login
            rt.eventually(lambda: "carol" in others(alice), what="alice sees carol")
            expect(tcp.move(login.zone.min_x + 5, login.zone.min_y + 5), "move")
            rt.eventually(lambda: abs(others(alice)["carol"][0] - (login.zone.min_x + 5)) < 1e-3,
                          what="alice sees carol move")
            alice.find_element(By.ID, "chat").send_keys("hello carol")
            alice.find_element(By.ID, "chat-send").click()
            tcp.wait_push(lambda m: body_of(m) == "chat_line" and m.chat_line.text == "hello carol",
                          what="carol reads alice")
            canvas.send_keys(Keys.ARROW_DOWN)
            tcp.wait_push(lambda m: body_of(m) == "moved" and m.moved.player_id ==
                          login.others[[o.name for o in login.others].index("alice")].player_id,
                          what="carol sees alice move")
            assert not state(alice, "rg.errors"), state(alice, "rg.errors")

            out = artifact_dir(build_dir)
            for name, driver in (("alice", alice), ("bob", bob)):
                path = os.path.join(out, "browser-%s.png" % name)
                assert driver.save_screenshot(path), path
                assert os.path.getsize(path) > 1000, path
                print("screenshot: " + path, flush=True)
        finally:
            for driver in (alice, bob):
                if driver:
                    driver.quit()


rt.main(test)
