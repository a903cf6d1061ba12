"""mx.nd.random.multinomial / sample_multinomial and shuffle: MXNet 1.9.1's shapes and
dtypes, the get_prob gradient rule (MXNet: d log p[k] / d p = count(k) / p[k], recorded from
real MXNet: samples [[2,0,0],[0,0,1]] of [[.2,.3,.5],[.6,.4,0]] give [[10,0,2],[3.33,2.5,0]]),
frequencies, seeding."""
import numpy as np
import pytest

import agjit as mx
from symbol.base import MXNetError


def test_shapes_and_dtypes_as_mxnet():
    p1 = mx.nd.array([0.1, 0.9])
    assert mx.nd.random.multinomial(p1).shape == (1,)
    assert mx.nd.random.multinomial(p1, shape=2).shape == (2,)
    p = mx.nd.array([[0.2, 0.3, 0.5], [0.6, 0.4, 0.0]])
    s = mx.nd.random.multinomial(p, shape=(4, 2))
    assert s.shape == (2, 4, 2) and s.dtype == np.int32
    s, lp = mx.nd.sample_multinomial(p, get_prob=True, dtype="int64")
    assert s.dtype == np.int64 and lp.dtype == np.float32 and lp.shape == (2,)
    np.testing.assert_allclose(lp.asnumpy(), np.log(p.asnumpy()[[0, 1], s.asnumpy()]), rtol=1e-6)


def test_get_prob_gradient_counts_over_p():
    p = mx.nd.array([[0.2, 0.3, 0.5], [0.6, 0.4, 0.0]])
    p.attach_grad()
    mx.random.seed(7)
    with mx.autograd.record():
        s, lp = mx.nd.random.multinomial(p, shape=5, get_prob=True)
    lp.backward()
    sn, pn = s.asnumpy(), p.asnumpy()
    want = np.zeros_like(pn)
    for r in range(2):
        for k in sn[r]:
            want[r, k] += 1.0 / pn[r, k]
    np.testing.assert_allclose(p.grad.asnumpy(), want, rtol=1e-6)
    assert (sn[1] != 2).all()              # zero probability is never drawn


def test_frequencies_and_seed():
    p = mx.nd.array([0.1, 0.2, 0.7])
    mx.random.seed(3)
    a = mx.nd.random.multinomial(p, shape=20000).asnumpy()
    freq = np.bincount(a, minlength=3) / a.size
    np.testing.assert_allclose(freq, [0.1, 0.2, 0.7], atol=0.015)
    mx.random.seed(3)
    assert (mx.nd.random.multinomial(p, shape=20000).asnumpy() == a).all()


def test_shuffle_is_a_seeded_permutation_of_rows():
    x = mx.nd.array(np.arange(12).reshape(6, 2))
    mx.random.seed(5)
    y = mx.nd.random.shuffle(x).asnumpy()
    assert sorted(map(tuple, y)) == sorted(map(tuple, x.asnumpy()))
    assert (y[:, 1] == y[:, 0] + 1).all()                   # rows move whole
    mx.random.seed(5)
    assert (mx.nd.shuffle(x).asnumpy() == y).all()


@pytest.mark.parametrize("data,msg", [
    ([[0.5, -0.1]], "non-negative"),
    ([[0.0, 0.0]], "positive total"),
])
def test_bad_probabilities(data, msg):
    with pytest.raises(MXNetError, match=msg):
        mx.nd.random.multinomial(mx.nd.array(data))
