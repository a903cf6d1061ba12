"""``mx.rnn.encode_sentences`` and ``mx.rnn.BucketSentenceIter`` (MXNet 1.x's bucketing
language-model input)."""
import bisect
import random as _pyrandom

import numpy as np

from ..io import DataIter, DataBatch, DataDesc

__all__ = ["encode_sentences", "BucketSentenceIter"]


def encode_sentences(sentences, vocab=None, invalid_label=-1, invalid_key="\n", start_label=0,
                     unknown_token=None):
    """Integer-encode token lists, building the vocabulary (``{invalid_key: invalid_label}``
    plus each new token at the next index from ``start_label``, skipping ``invalid_label``)
    unless ``vocab`` is given; with a given vocabulary an unknown token raises unless
    ``unknown_token`` is set, in which case -- as in MXNet 1.9.1 -- that token is (re)entered
    at the next index and used.  Returns ``(encoded, vocab)``."""
    idx = start_label
    new_vocab = vocab is None
    if new_vocab:
        vocab = {invalid_key: invalid_label}
    out = []
    for sent in sentences:
        coded = []
        for word in sent:
            if word not in vocab:
                if not (new_vocab or unknown_token):
                    raise AssertionError("Unknown token %s" % word)
                if idx == invalid_label:
                    idx += 1
                if unknown_token:
                    word = unknown_token
                vocab[word] = idx
                idx += 1
            coded.append(vocab[word])
        out.append(coded)
    return out, vocab


class BucketSentenceIter(DataIter):
    """Batches of equal-length (bucketed) sentences for a language model; the label of each
    step is the next token (``invalid_label`` after the last).  ``buckets`` default: every
    sentence length with at least ``batch_size`` sentences; longer sentences are discarded
    (a warning line is printed, as MXNet does); shorter ones are padded with
    ``invalid_label`` to their bucket.  Every epoch (``reset``) shuffles the batches and the
    sentences within each bucket.  ``layout`` 'NT' (batch major) or 'TN'."""

    def __init__(self, sentences, batch_size, buckets=None, invalid_label=-1, data_name="data",
                 label_name="softmax_label", dtype="float32", layout="NT"):
        super(BucketSentenceIter, self).__init__(batch_size)
        if not buckets:
            counts = np.bincount([len(s) for s in sentences])
            buckets = [i for i, c in enumerate(counts) if c >= batch_size]
        buckets = sorted(buckets)
        if not buckets:
            raise ValueError("BucketSentenceIter: no bucket (no sentence length occurs "
                             "batch_size=%d times; pass buckets=)" % batch_size)
        discarded = 0
        rows = [[] for _ in buckets]
        for s in sentences:
            b = bisect.bisect_left(buckets, len(s))
            if b == len(buckets):
                discarded += 1
                continue
            buf = np.full((buckets[b],), invalid_label, dtype=dtype)
            buf[:len(s)] = s
            rows[b].append(buf)
        self.data = [np.asarray(r, dtype=dtype).reshape(len(r), n) for r, n in zip(rows, buckets)]
        print("WARNING: discarded %d sentences longer than the largest bucket." % discarded)
        self.batch_size = batch_size
        self.buckets = buckets
        self.data_name = data_name
        self.label_name = label_name
        self.dtype = dtype
        self.invalid_label = invalid_label
        self.nddata = []
        self.ndlabel = []
        self.major_axis = layout.find("N")
        self.layout = layout
        self.default_bucket_key = max(buckets)
        if self.major_axis == 0:
            shape = (batch_size, self.default_bucket_key)
        elif self.major_axis == 1:
            shape = (self.default_bucket_key, batch_size)
        else:
            raise ValueError("Invalid layout %s: Must by NT (batch major) or TN (time major)"
                             % layout)
        self.provide_data = [DataDesc(data_name, shape, dtype, layout=layout)]
        self.provide_label = [DataDesc(label_name, shape, dtype, layout=layout)]
        self.idx = []
        for i, buck in enumerate(self.data):
            self.idx.extend((i, j) for j in range(0, len(buck) - batch_size + 1, batch_size))
        self.curr_idx = 0
        self.reset()

    def reset(self):
        from .. import ndarray as _nd
        self.curr_idx = 0
        _pyrandom.shuffle(self.idx)
        for buck in self.data:
            np.random.shuffle(buck)
        self.nddata = []
        self.ndlabel = []
        for buck in self.data:
            label = np.empty_like(buck)
            if buck.size:
                label[:, :-1] = buck[:, 1:]
                label[:, -1] = self.invalid_label
            self.nddata.append(_nd.array(buck, dtype=self.dtype))
            self.ndlabel.append(_nd.array(label, dtype=self.dtype))

    def next(self):
        if self.curr_idx == len(self.idx):
            raise StopIteration
        i, j = self.idx[self.curr_idx]
        self.curr_idx += 1
        data = self.nddata[i][j:j + self.batch_size]
        label = self.ndlabel[i][j:j + self.batch_size]
        if self.major_axis == 1:
            data, label = data.T, label.T
        return DataBatch([data], [label], pad=0, bucket_key=self.buckets[i],
                         provide_data=[DataDesc(self.data_name, data.shape, self.dtype,
                                                layout=self.layout)],
                         provide_label=[DataDesc(self.label_name, label.shape, self.dtype,
                                                 layout=self.layout)])
