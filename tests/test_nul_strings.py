"""Strings are taken by their length, never cut at a NUL (issue 11, item 4).

- A password is its whole byte string: an account made with b"ab\\0secretpart"
  refuses the login b"ab" (WRONG_PASSWORD) and takes the whole one.
- A name with a NUL is refused INVALID_NAME; it does not log in as its prefix.
- Chat with a NUL (or another control character) is refused INVALID_CHAT; it
  is never delivered cut short.
"""
import ringgate_test as rt
from ringgate_test import expect, expect_error


def test(build_dir):
    with rt.Cluster(build_dir) as cluster:
        owner = cluster.client("owner")
        assert expect(owner.login("nulpw", b"ab\0secretpart"), "login").created
        expect(owner.logout(), "logout")

        guesser = cluster.client("guesser")
        expect_error(guesser.login("nulpw", b"ab"), "WRONG_PASSWORD")
        expect_error(guesser.login("nulpw", b"ab\0"), "WRONG_PASSWORD")
        again = expect(guesser.login("nulpw", b"ab\0secretpart"), "login")
        assert not again.created, again
        expect(guesser.logout(), "logout")

        # "bob" exists; "bob\0evil" is not bob, and not a valid name at all.
        bob = cluster.client("bob")
        expect(bob.login("bob", "pw"), "login")
        impostor = cluster.client("impostor")
        err = expect_error(impostor.login("bob\0evil", "pw"), "INVALID_NAME")
        assert "NUL" in err.message, err

        # Chat: a NUL or any other control character is refused, whole.
        alice = cluster.client("alice")
        expect(alice.login("alice", "pw"), "login")
        for text in ("a\0b", "a\nb", "a\x1bb", "a\x7fb", "a\u0085b"):
            expect_error(alice.chat(text), "INVALID_CHAT")
        expect(alice.chat("a b"), "chat")
        update = bob.wait_push(lambda m: m.WhichOneof("body") == "update" and m.update.chat,
                               what="chat line")
        assert [c.text for c in update.update.chat] == ["a b"], update
        pushes = bob.take_pushes()
        assert not [m for m in pushes if m.WhichOneof("body") == "update" and m.update.chat], \
            pushes


rt.main(test)
