"""Gold earned (acknowledged as durable) survives deploy down + up."""
import ringgate_test as rt
from ringgate_test import expect


def test(build_dir):
    with rt.Cluster(build_dir) as cluster:
        dave = cluster.client("dave")
        start = expect(dave.login("dave", "dave-pw"), "login").self.gold
        assert expect(dave.earn(5), "earn").gold == start + 5
        assert expect(dave.earn(7), "earn").gold == start + 12
        dave.close()

        cluster.down()
        cluster.up()

        dave = cluster.client("dave-again")
        back = expect(dave.login("dave", "dave-pw"), "login")
        assert not back.created, back
        assert back.self.gold == start + 12, "gold after restart: %s" % back.self


rt.main(test)
