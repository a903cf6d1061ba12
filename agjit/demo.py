"""The README demo: the seed example ``y = x*x + 1`` and a recorded two-layer MLP.

Run with ``python -m agjit.demo``.  Prints values, gradients and the recorded graphs (as MXNet
graph JSON and as a node table).
"""
import numpy as np

import agjit as mx


def seed_example():
    print("== seed example: y = x * x + 1 ==")
    x = mx.nd.array([1, 2, 3, 4])
    x.attach_grad()
    with mx.autograd.record():
        y = x * x + 1
    sym = mx.autograd.get_symbol(y)
    y.backward()
    print("y      =", y.asnumpy())
    print("dy/dx  =", x.grad.asnumpy())
    print("arguments:", sym.list_arguments())
    print(sym.tojson())


def mlp_example():
    print("\n== recorded two-layer MLP (FullyConnected -> relu -> FullyConnected -> "
          "softmax cross-entropy) ==")
    rs = np.random.RandomState(0)
    x = mx.nd.array(rs.randn(8, 5))
    label = mx.nd.array(rs.randint(0, 3, size=8))
    w1, b1 = mx.nd.array(rs.randn(16, 5) * 0.3), mx.nd.zeros((16,))
    w2, b2 = mx.nd.array(rs.randn(3, 16) * 0.3), mx.nd.zeros((3,))
    params = {"w1": w1, "b1": b1, "w2": w2, "b2": b2}
    for p in params.values():
        p.attach_grad()
    with mx.autograd.record():
        h = mx.nd.relu(mx.nd.FullyConnected(x, w1, b1, num_hidden=16))
        out = mx.nd.FullyConnected(h, w2, b2, num_hidden=3)
        loss = mx.nd.softmax_cross_entropy(out, label) / 8
    sym = mx.autograd.get_symbol(loss)
    loss.backward()
    print("loss =", float(loss.asscalar()))
    for name, p in params.items():
        g = p.grad.asnumpy()
        print("d loss / d %-2s shape %-8s |g| = %.6f" % (name, g.shape, float(np.abs(g).sum())))
    print("graph arguments:", sym.list_arguments())
    print("%-10s %-22s %s" % ("node", "op", "inputs"))
    import json
    graph = json.loads(sym.tojson())
    for i, n in enumerate(graph["nodes"]):
        print("%-10s %-22s %s" % (n["name"], n["op"], [e[0] for e in n["inputs"]]))


def main():
    seed_example()
    mlp_example()


if __name__ == "__main__":
    main()
