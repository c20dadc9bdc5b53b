"""A wrong password is refused; the right one still works."""
import ringgate_test as rt
from ringgate_test import expect, expect_error


def test(build_dir):
    with rt.Cluster(build_dir) as cluster:
        first = cluster.client("first")
        assert expect(first.login("carol", "right-pw"), "login").created
        expect(first.logout(), "logout")

        intruder = cluster.client("intruder")
        expect_error(intruder.login("carol", "wrong-pw"), "WRONG_PASSWORD")
        # The refused session may try again, and the account is intact.
        again = expect(intruder.login("carol", "right-pw"), "login")
        assert not again.created, again


rt.main(test)
