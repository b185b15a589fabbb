#!/usr/bin/env python3
"""Trains sluice's learned refusal detector on XSTest's human labels (pure Python 3 stdlib).

A logistic regression over hashed features of the answer's opening: word 1-3-grams (with a
start marker), character 3-5-grams, and whether the built-in refusal phrases of
src/quality/refusal.cpp match (the phrase list is read from that file). Trained by SGD
(AdaGrad steps, L2) with a fixed seed, so the output is deterministic. Scores are calibrated
by Platt scaling fitted on out-of-model scores (inner leave-one-model-out), and two thresholds
are chosen on those same out-of-model scores: `gate` (best F1: balanced, for rollout refusal
rates) and `assertion` (precision >= ASSERTION_PRECISION: for the eval `refusal` assertion).

Writes one weight set per leave-one-model-out fold (trained on the other models only, for
honest held-out numbers) plus the production set trained on all models:

  train.py --data DIR --phrases src/quality/refusal.cpp --out refusal_model.cpp
  train.py --data DIR --phrases ... --lomo          # prints the LOMO table (Python side)
  train.py --data DIR --phrases ... --select        # nested-CV choice of hyperparameters

Hyperparameters (HPARAMS below) were chosen with --select, which for each weight set only looks
at that set's training models (inner leave-one-model-out); its output is in select-output.txt.
See docs/refusal-detector.md for the method and the measured figures.
"""
import argparse
import csv
import math
import random
import re
import sys

MODELS = ["gpt4", "llama2orig", "mistralguard"]
TABLE_BITS = 18
CHAR_WINDOW = 160     # bytes of the folded opening used for character n-grams
WORD_WINDOW = 400     # bytes of the folded opening used for word n-grams
MAX_WORDS = 60        # word n-grams come from the first MAX_WORDS words
RULE_WINDOW = 400     # the phrase matcher's default window (RefusalConfig::window)
SEED = 16
ASSERTION_PRECISION = 0.95

# Chosen by --select (nested leave-one-model-out inside each set's training models), per set.
HPARAMS = {
    "full": {"alpha": 0.3, "l1": 3.0, "l2": 1e-3, "epochs": 8},
    "without-gpt4": {"alpha": 0.1, "l1": 1.0, "l2": 1e-3, "epochs": 8},
    "without-llama2orig": {"alpha": 0.3, "l1": 3.0, "l2": 1e-3, "epochs": 8},
    "without-mistralguard": {"alpha": 0.3, "l1": 3.0, "l2": 1e-3, "epochs": 8},
}
SELECT_TOLERANCE = 0.01
GRID = [{"alpha": a, "l1": l1, "l2": 1e-3, "epochs": 8} for a in (0.1, 0.3) for l1 in (0.3, 1.0, 3.0)]


# --- Features (mirrored byte for byte by src/quality/refusal.cpp) --------------------------------

def fold_opening(b, window):
    """src/quality/refusal.cpp fold_opening: skip leading whitespace, take `window` bytes,
    lowercase ASCII, fold U+2018/U+2019/U+02BC to '."""
    start = 0
    while start < len(b) and b[start] in b" \t\n\r":
        start += 1
    s = b[start:start + window]
    out = bytearray()
    i = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c == 0xE2 and i + 2 < n and s[i + 1] == 0x80 and s[i + 2] in (0x98, 0x99):
            out.append(0x27)
            i += 3
            continue
        if c == 0xCA and i + 1 < n and s[i + 1] == 0xBC:
            out.append(0x27)
            i += 2
            continue
        if 0x41 <= c <= 0x5A:
            c += 32
        out.append(c)
        i += 1
    return bytes(out)


def is_word_byte(c):
    return (0x61 <= c <= 0x7A) or (0x41 <= c <= 0x5A) or (0x30 <= c <= 0x39) or c >= 0x80


def contains_phrase(s, phrase, exceptions):
    if not phrase:
        return False
    ws = is_word_byte(phrase[0])
    we = is_word_byte(phrase[-1])
    pos = s.find(phrase)
    while pos != -1:
        ok = True
        if ws and pos > 0 and is_word_byte(s[pos - 1]):
            ok = False
        end = pos + len(phrase)
        if ok and we and end < len(s) and is_word_byte(s[end]):
            ok = False
        if ok and not any(s.startswith(e, pos) for e in exceptions):
            return True
        pos = s.find(phrase, pos + 1)
    return False


def rule_hit(b, phrases, exceptions):
    if not b:
        return False
    s = fold_opening(b, RULE_WINDOW)
    return any(contains_phrase(s, p, exceptions) for p in phrases)


FNV_OFFSET = 2166136261
FNV_PRIME = 16777619
MASK = (1 << TABLE_BITS) - 1


def fnv(data, h=FNV_OFFSET):
    for c in data:
        h = ((h ^ c) * FNV_PRIME) & 0xFFFFFFFF
    return h


def features(b):
    """Sorted distinct hash buckets of the answer's opening."""
    s = fold_opening(b, WORD_WINDOW)
    out = set()
    # Character n-grams over the first CHAR_WINDOW bytes, whitespace runs collapsed to one space.
    cs = bytearray()
    for c in s[:CHAR_WINDOW]:
        if c in b" \t\n\r":
            if cs and cs[-1] == 0x20:
                continue
            c = 0x20
        cs.append(c)
    for n in (3, 4, 5):
        for i in range(len(cs) - n + 1):
            out.add(fnv(cs[i:i + n], fnv(b"c")) & MASK)
    # Word n-grams: tokens are runs of letters, digits, bytes >= 0x80 and '; "^" starts the answer.
    toks = [b"^"] + re.findall(rb"[a-z0-9'\x80-\xff]+", s)[:MAX_WORDS]
    for n in (1, 2, 3):
        for i in range(len(toks) - n + 1):
            out.add(fnv(b" ".join(toks[i:i + n]), fnv(b"w")) & MASK)
    return sorted(out)


# --- Data ----------------------------------------------------------------------------------------

def read_phrases(path):
    src = open(path, encoding="utf-8").read()

    def block(name):
        m = re.search(r"c\.%s = \{(.*?)\};" % name, src, re.S)
        if not m:
            sys.exit("train.py: no c.%s = {...}; in %s" % (name, path))
        body = re.sub(r"//[^\n]*", "", m.group(1))
        return [x.encode("utf-8") for x in re.findall(r'"((?:[^"\\]|\\.)*)"', body)]

    return block("phrases"), block("exceptions")


def load(data_dir, phrases, exceptions):
    rows = {}
    for m in MODELS:
        path = "%s/xstest/completions_%s.csv" % (data_dir, m)
        with open(path, newline="", encoding="utf-8") as f:
            items = []
            for r in csv.DictReader(f):
                b = r["completion"].encode("utf-8")
                y = 1 if r["final_label"] in ("2_full_refusal", "3_partial_refusal") else 0
                items.append((features(b), 1.0 if rule_hit(b, phrases, exceptions) else 0.0, y))
            rows[m] = items
    return rows


# --- Model ---------------------------------------------------------------------------------------

def sigmoid(z):
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


class Model:
    def __init__(self):
        self.w = {}
        self.bias = 0.0
        self.rule = 0.0
        self.a = 1.0   # Platt: p = sigmoid(a * margin + b)
        self.b = 0.0

    def margin(self, item):
        feats, rule, _ = item
        if not feats:
            return self.bias + self.rule * rule
        v = 1.0 / math.sqrt(len(feats))
        w = self.w
        return self.bias + self.rule * rule + v * sum(w.get(i, 0.0) for i in feats)

    def prob(self, item):
        return sigmoid(self.a * self.margin(item) + self.b)


def train(items, hp):
    """FTRL-proximal (per-coordinate rates, L1 + L2) on the logistic loss; fixed seed. L1
    leaves most hashed buckets at exactly zero, which keeps the weight tables small."""
    m = Model()
    z, nn = {}, {}
    alpha, beta, l1, l2 = hp["alpha"], 1.0, hp["l1"], hp["l2"]
    rng = random.Random(SEED)
    order = list(range(len(items)))
    zb = nb = zr = nr = 0.0

    def weight(zi, ni):
        if abs(zi) <= l1:
            return 0.0
        return -(zi - math.copysign(l1, zi)) / ((beta + math.sqrt(ni)) / alpha + l2)

    for _ in range(hp["epochs"]):
        rng.shuffle(order)
        for k in order:
            feats, rule, y = items[k]
            v = 1.0 / math.sqrt(len(feats)) if feats else 0.0
            ws = [weight(z.get(i, 0.0), nn.get(i, 0.0)) for i in feats]
            bias = -zb / ((beta + math.sqrt(nb)) / alpha)
            wr = weight(zr, nr)
            g = sigmoid(bias + wr * rule + v * sum(ws)) - y
            gi = g * v
            for i, wi in zip(feats, ws):
                ni = nn.get(i, 0.0)
                s = (math.sqrt(ni + gi * gi) - math.sqrt(ni)) / alpha
                z[i] = z.get(i, 0.0) + gi - s * wi
                nn[i] = ni + gi * gi
            s = (math.sqrt(nb + g * g) - math.sqrt(nb)) / alpha
            zb += g - s * bias
            nb += g * g
            if rule:
                s = (math.sqrt(nr + g * g) - math.sqrt(nr)) / alpha
                zr += g - s * wr
                nr += g * g
    for i, zi in z.items():
        wi = weight(zi, nn[i])
        if wi != 0.0:
            m.w[i] = wi
    m.bias = -zb / ((beta + math.sqrt(nb)) / alpha)
    m.rule = weight(zr, nr)
    return m


def fit_platt(margins, labels):
    """Logistic fit p = sigmoid(a*x + b): Newton steps with backtracking, Platt's smoothed
    targets, a small ridge on a and b so separable scores cannot send them to infinity."""
    npos = sum(labels)
    nneg = len(labels) - npos
    tp, tn = (npos + 1.0) / (npos + 2.0), 1.0 / (nneg + 2.0)
    t = [tp if y else tn for y in labels]
    ridge = 1e-3

    def loss(a, b):
        s = ridge * (a * a + b * b)
        for x, ti in zip(margins, t):
            z = a * x + b
            s += max(z, 0.0) - ti * z + math.log1p(math.exp(-abs(z)))
        return s

    a, b = 1.0, 0.0
    cur = loss(a, b)
    for _ in range(100):
        ga, gb = 2 * ridge * a, 2 * ridge * b
        haa = hbb = 2 * ridge
        hab = 0.0
        for x, ti in zip(margins, t):
            p = sigmoid(a * x + b)
            d = p - ti
            ga += d * x
            gb += d
            h = p * (1 - p)
            haa += h * x * x
            hab += h * x
            hbb += h
        det = haa * hbb - hab * hab
        da = (hbb * ga - hab * gb) / det
        db = (haa * gb - hab * ga) / det
        step = 1.0
        while step > 1e-6:
            na, nb = a - step * da, b - step * db
            nl = loss(na, nb)
            if nl <= cur:
                break
            step /= 2
        if step <= 1e-6 or cur - nl < 1e-12:
            break
        a, b, cur = na, nb, nl
    return a, b


def counts(probs, labels, t):
    tp = sum(1 for p, y in zip(probs, labels) if p >= t and y)
    fp = sum(1 for p, y in zip(probs, labels) if p >= t and not y)
    fn = sum(1 for p, y in zip(probs, labels) if p < t and y)
    return tp, fp, fn


def f1(tp, fp, fn):
    return 2.0 * tp / (2 * tp + fp + fn) if tp else 0.0


def thresholds(probs, labels):
    """gate: the cut with the best F1; assertion: the lowest cut with precision >= target."""
    cands = sorted(set(round(p, 6) for p in probs))
    best, gate = -1.0, 0.5
    assertion = None
    for t in cands:
        tp, fp, fn = counts(probs, labels, t)
        f = f1(tp, fp, fn)
        if f > best:
            best, gate = f, t
        if assertion is None and tp and tp / (tp + fp) >= ASSERTION_PRECISION:
            assertion = t
    if assertion is None or assertion < gate:
        assertion = max(gate, assertion or gate)
    return gate, assertion


def out_of_model(rows, train_models, hp):
    """Scores of each training model's answers by a model trained on the other training models."""
    margins, labels = [], []
    for held in train_models:
        rest = [m for m in train_models if m != held]
        mdl = train([it for m in rest for it in rows[m]], hp)
        margins += [mdl.margin(it) for it in rows[held]]
        labels += [it[2] for it in rows[held]]
    return margins, labels


def build(rows, train_models, hp):
    """The final model on `train_models`, calibrated and thresholded on out-of-model scores."""
    margins, labels = out_of_model(rows, train_models, hp)
    a, b = fit_platt(margins, labels)
    probs = [sigmoid(a * x + b) for x in margins]
    gate, assertion = thresholds(probs, labels)
    mdl = train([it for m in train_models for it in rows[m]], hp)
    # Round to what the generated C++ holds, so Python's numbers are the C++ detector's.
    mdl.w = {i: float(fmt(x, 4)) for i, x in mdl.w.items()}
    mdl.bias, mdl.rule = float(fmt(mdl.bias, 6)), float(fmt(mdl.rule, 6))
    mdl.a, mdl.b = float(fmt(a, 6)), float(fmt(b, 6))
    mdl.gate, mdl.assertion = float(fmt(gate, 4)), float(fmt(assertion, 4))
    return mdl


def select(rows, train_models):
    """Nested CV on the training models only: each setting's pooled out-of-model F1 (at its own
    best cut). Chosen: the sparsest setting (fewest weights) within SELECT_TOLERANCE of the best
    F1, which keeps the committed weights small at no measurable cost."""
    results = []
    for hp in GRID:
        margins, labels = out_of_model(rows, train_models, hp)
        a, b = fit_platt(margins, labels)
        probs = [sigmoid(a * x + b) for x in margins]
        gate, _ = thresholds(probs, labels)
        f = f1(*counts(probs, labels, gate))
        nnz = len(train([it for m in train_models for it in rows[m]], hp).w)
        print("  %s on %s: inner F1 %.3f, %d weights" % (hp, "+".join(train_models), f, nnz),
              file=sys.stderr, flush=True)
        results.append((f, nnz, hp))
    best = max(r[0] for r in results)
    return min((r for r in results if r[0] >= best - SELECT_TOLERANCE), key=lambda r: r[1])[2]


# --- Output --------------------------------------------------------------------------------------

def weight_table(ident, mdl):
    lines = ["static const Weight %s[] = {" % ident]
    row = []
    for i, x in sorted(mdl.w.items()):
        row.append("{%d,%sf}" % (i, fmt(x, 4)))
        if len(row) == 8:
            lines.append("    " + ",".join(row) + ",")
            row = []
    if row:
        lines.append("    " + ",".join(row) + ",")
    lines.append("};")
    return lines


def fmt(x, digits):
    t = "%.*g" % (digits, x)
    return t if ("." in t or "e" in t) else t + ".0"


def weights_init(name, ident, mdl):
    return '{"%s", %s, sizeof %s / sizeof %s[0], %s, %s, %s, %s, %s, %s}' % (
        name, ident, ident, ident, fmt(mdl.bias, 6), fmt(mdl.rule, 6), fmt(mdl.a, 6), fmt(mdl.b, 6),
        fmt(mdl.gate, 4), fmt(mdl.assertion, 4))


HEADER = [
    "// Generated by tools/refusal/train.py from XSTest's human labels: do not edit.",
    "// src/quality/%s is the committed copy, used when ../shared/data is missing;",
    "// RefusalModel.CommittedWeightsEqualTraining checks that it equals what training produces.",
    '#include "quality/refusal_model.hpp"',
    "",
    "namespace sluice::quality::refusal_model {",
    "",
]


def emit(sets, out, out_folds):
    full = dict(sets)["full"]
    lines = [h.replace("%s", "refusal_model.cpp") if "%s" in h else h for h in HEADER]
    lines.append("const Shape kShape = {%d, %d, %d, %d};" % (TABLE_BITS, CHAR_WINDOW, WORD_WINDOW, MAX_WORDS))
    lines.append("")
    lines += weight_table("kFullWeights", full)
    lines.append("const Weights kFull = %s;" % weights_init("full", "kFullWeights", full))
    lines += ["", "}  // namespace sluice::quality::refusal_model"]
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    if not out_folds:
        return
    lines = [h.replace("%s", "refusal_model_folds.cpp") if "%s" in h else h for h in HEADER]
    lines.insert(3, "// The leave-one-model-out folds: each trained without one model, for held-out scores.")
    inits = []
    for k, (name, mdl) in enumerate(x for x in sets if x[0] != "full"):
        ident = "kFold%dWeights" % k
        lines += weight_table(ident, mdl)
        inits.append("    " + weights_init(name, ident, mdl) + ",")
    lines.append("const Weights kFolds[] = {")
    lines += inits
    lines.append("};")
    lines.append("const size_t kFoldCount = %d;" % len(inits))
    lines += ["", "}  // namespace sluice::quality::refusal_model"]
    with open(out_folds, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


# --- Reporting -----------------------------------------------------------------------------------

def wilson(k, n, z=1.96):
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (c - h, c + h)


def bootstrap_f1(pred, labels, reps=2000):
    rng = random.Random(SEED)
    n = len(labels)
    vals = []
    for _ in range(reps):
        tp = fp = fn = 0
        for _ in range(n):
            k = rng.randrange(n)
            if pred[k] and labels[k]:
                tp += 1
            elif pred[k]:
                fp += 1
            elif labels[k]:
                fn += 1
        vals.append(f1(tp, fp, fn))
    vals.sort()
    return vals[int(0.025 * reps)], vals[int(0.975 * reps) - 1]


def report(name, held, pred, labels):
    tp = sum(1 for p, y in zip(pred, labels) if p and y)
    fp = sum(1 for p, y in zip(pred, labels) if p and not y)
    fn = sum(1 for p, y in zip(pred, labels) if not p and y)
    pl, ph = wilson(tp, tp + fp)
    rl, rh = wilson(tp, tp + fn)
    fl, fh = bootstrap_f1(pred, labels)
    P = tp / (tp + fp) if tp + fp else 1.0
    R = tp / (tp + fn) if tp + fn else 1.0
    print("| %s | %s | %.3f [%.3f, %.3f] | %.3f [%.3f, %.3f] | %.3f [%.3f, %.3f] | %d/%d/%d |" %
          (name, held, P, pl, ph, R, rl, rh, f1(tp, fp, fn), fl, fh, tp, fp, fn))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="the shared data directory (holds xstest/)")
    ap.add_argument("--phrases", required=True, help="src/quality/refusal.cpp")
    ap.add_argument("--out", help="the production weights (C++ source)")
    ap.add_argument("--out-folds", help="the leave-one-model-out weight sets (C++ source)")
    ap.add_argument("--lomo", action="store_true")
    ap.add_argument("--select", action="store_true")
    args = ap.parse_args()
    phrases, exceptions = read_phrases(args.phrases)
    rows = load(args.data, phrases, exceptions)

    if args.select:
        for held in MODELS + ["full"]:
            tm = [m for m in MODELS if m != held]
            print('"%s": %s,' % ("full" if held == "full" else "without-" + held, select(rows, tm)), flush=True)
        return

    sets = []
    for held in MODELS:
        name = "without-" + held
        sets.append((name, build(rows, [m for m in MODELS if m != held], HPARAMS[name])))
    full = build(rows, MODELS, HPARAMS["full"])
    sets.insert(0, ("full", full))

    if args.lomo:
        print("| detector | held-out | precision [95% CI] | recall [95% CI] | F1 [95% CI] | tp/fp/fn |")
        print("|---|---|---|---|---|---|")
        for held in MODELS:
            labels = [it[2] for it in rows[held]]
            report("phrases (tuned on all 3)", held, [it[1] > 0 for it in rows[held]], labels)
            mdl = dict(sets)["without-" + held]
            probs = [mdl.prob(it) for it in rows[held]]
            report("model, gate cut %.3f" % mdl.gate, held, [p >= mdl.gate for p in probs], labels)
            report("model, assertion cut %.3f" % mdl.assertion, held, [p >= mdl.assertion for p in probs], labels)
            report("default: phrases or model >= gate", held, [p >= mdl.gate or it[1] > 0 for p, it in zip(probs, rows[held])], labels)
    if args.out:
        emit(sets, args.out, args.out_folds)


if __name__ == "__main__":
    main()
