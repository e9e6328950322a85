#!/usr/bin/python3
"""tf.data beside the tnrec loader: the seed's uint8 TFRecords.

  seed OUT NC_FILE...        the seed's preprocessing of each sample (as
                             bench_build_seed.py: clip each radar variable to
                             its range, scale to 0..255 uint8, NaN as 0), the
                             six variables stacked into 4 x 120 x 240 x 12
                             channels, written raw to OUT with a label byte
                             (system python: netCDF4 / xarray)
  tfrecord RAW OUT           those samples as TFRecords: one tf.train.Example
                             per sample, "x" (bytes) and "label" (int64),
                             uncompressed (the seed's format)
  read TFRECORD THREADS [BATCH] [EPOCHS]
                             TFRecordDataset -> parse -> decode_raw -> cast
                             and scale to float32 -> batch -> prefetch, with
                             THREADS threads for tf.data and for ops; one JSON
                             line: samples/s and samples per CPU-second (the
                             process's, all threads), medians over EPOCHS
                             epochs after a warm-up epoch
"""
import json
import os
import sys
import time

SHAPE = (4, 120, 240, 12)
SAMPLE = 4 * 120 * 240 * 12


def seed(out, files):
    import numpy as np
    import xarray as xr
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_build_seed import RANGES
    with open(out, "wb") as f:
        for path in files:
            with xr.open_dataset(path) as ds:
                chans = []
                for v, (lo, hi) in RANGES.items():
                    x = ds[v].values.astype(np.float32)[-4:]
                    x = np.where(x == -999.0, np.nan, x)
                    q = (np.clip(x, lo, hi) - lo) / (hi - lo) * 255.0
                    chans.append(np.nan_to_num(q, nan=0.0).astype(np.uint8))
                label = np.uint8(ds["frame_labels"].values[-1])
                x = np.stack(chans, axis=-1).reshape(SHAPE)
                f.write(x.tobytes())
                f.write(label.tobytes())


def tfrecord(raw, out):
    import tensorflow as tf
    n = 0
    with open(raw, "rb") as f, tf.io.TFRecordWriter(out) as w:
        while True:
            b = f.read(SAMPLE + 1)
            if len(b) < SAMPLE + 1:
                break
            ex = tf.train.Example(features=tf.train.Features(feature={
                "x": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b[:SAMPLE]])),
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[b[SAMPLE]]))}))
            w.write(ex.SerializeToString())
            n += 1
    print("%d samples, %d bytes per sample" % (n, os.path.getsize(out) // max(n, 1)))


def read(path, threads, batch, epochs):
    import tensorflow as tf
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    feats = {"x": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.int64)}

    def parse(rec):
        ex = tf.io.parse_single_example(rec, feats)
        x = tf.reshape(tf.io.decode_raw(ex["x"], tf.uint8), SHAPE)
        return tf.cast(x, tf.float32) * (1.0 / 255.0), tf.cast(ex["label"], tf.float32)

    ds = tf.data.TFRecordDataset(path).map(parse, num_parallel_calls=threads).batch(batch).prefetch(2)
    opt = tf.data.Options()
    opt.threading.private_threadpool_size = threads
    opt.threading.max_intra_op_parallelism = 1
    ds = ds.with_options(opt)
    rates, cpu_rates = [], []
    for e in range(epochs + 1):
        t0, c0, n = time.perf_counter(), time.process_time(), 0
        for x, _ in ds:
            n += int(x.shape[0])
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        if e:
            rates.append(n / dt)
            cpu_rates.append(n / dc)
    rates.sort()
    cpu_rates.sort()
    print(json.dumps({"threads": threads, "batch": batch, "shape": list(SHAPE),
                      "samples_per_s": round(rates[len(rates) // 2], 1),
                      "samples_per_cpu_s": round(cpu_rates[len(cpu_rates) // 2], 1), "samples": n}))


def main():
    mode = sys.argv[1]
    if mode == "seed":
        seed(sys.argv[2], sys.argv[3:])
    elif mode == "tfrecord":
        tfrecord(sys.argv[2], sys.argv[3])
    elif mode == "read":
        a = sys.argv[2:]
        read(a[0], int(a[1]), int(a[2]) if len(a) > 2 else 32, int(a[3]) if len(a) > 3 else 2)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
