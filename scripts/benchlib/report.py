"""The two tables the benchmark prints."""


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.1f}" if v >= 10 else f"{v:.2f}" if v >= 1 else f"{v:.3f}"
    return str(v)


def ratio(a, b):
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a and b:
        return f"{a / b:.2f}"
    return ""


def print_table(rows, notes):
    head = ("metric", "expel", "hashicorp/aws", "ratio")
    cells = [head] + [(m, fmt(e), fmt(a), ratio(e, a)) for m, e, a in rows]
    w = [max(len(r[i]) for r in cells) for i in range(4)]
    line = lambda r: f"{r[0]:<{w[0]}} | {r[1]:>{w[1]}} | {r[2]:>{w[2]}} | {r[3]:>{w[3]}}"
    print(line(head))
    print("-+-".join("-" * x for x in w))
    for r in cells[1:]:
        print(line(r))
    for n in notes:
        print(n)


def print_values(title, rows):
    """A table of (metric, value) rows under `title`."""
    w = max(len(m) for m, _ in rows)
    print(f"{title:<{w}} | value")
    print("-" * w + "-+-" + "-" * 40)
    for m, v in rows:
        print(f"{m:<{w}} | {fmt(v)}")
