#!/usr/bin/env python3
"""Check an Autobahn TestSuite fuzzingclient report (index.json) against the golden file.

Fails when a case's verdict is not accepted (behavior must be OK or INFORMATIONAL, the closing
behavior OK or INFORMATIONAL, unless --allow adds more) or when any case differs from the golden
file (conformance/autobahn-expected.json). Prints a Markdown summary table either way.
--update rewrites the golden file from the report instead of comparing.
Only the Python 3 standard library is used.
"""
import argparse
import collections
import json
import os
import sys

SECTIONS = {
    "1": "Framing",
    "2": "Pings/Pongs",
    "3": "Reserved bits",
    "4": "Opcodes",
    "5": "Fragmentation",
    "6": "UTF-8 handling",
    "7": "Close handling",
    "8": "(no cases)",
    "9": "Limits/performance",
    "10": "Miscellaneous",
    "12": "WebSocket compression (permessage-deflate)",
    "13": "WebSocket compression (permessage-deflate)",
}
ACCEPTED = {"OK", "INFORMATIONAL"}
VERDICT_ORDER = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "WRONG CODE", "UNCLEAN",
                 "FAILED BY CLIENT", "FAILED"]


def case_key(case_id):
    return tuple(int(p) if p.isdigit() else p for p in case_id.split("."))


def load_report(path, agent):
    with open(path) as f:
        index = json.load(f)
    if agent is None:
        if len(index) != 1:
            sys.exit(f"{path}: {len(index)} agents ({', '.join(index)}); choose one with --agent")
        agent = next(iter(index))
    cases = index[agent]
    return agent, {
        cid: {"behavior": c.get("behavior"), "behaviorClose": c.get("behaviorClose"),
              "remoteCloseCode": c.get("remoteCloseCode"), "duration": c.get("duration")}
        for cid, c in cases.items()
    }


def verdict_sort(v):
    return (VERDICT_ORDER.index(v) if v in VERDICT_ORDER else len(VERDICT_ORDER), v)


def summary_markdown(agent, results):
    by_section = collections.defaultdict(collections.Counter)
    close_bad = collections.Counter()
    total_ms = collections.Counter()
    verdicts = set()
    for cid, r in results.items():
        sec = cid.split(".")[0]
        by_section[sec][r["behavior"]] += 1
        verdicts.add(r["behavior"])
        if r["behaviorClose"] not in ACCEPTED:
            close_bad[sec] += 1
        total_ms[sec] += r.get("duration") or 0
    cols = sorted(verdicts, key=verdict_sort)
    lines = [f"Autobahn TestSuite fuzzingclient results for `{agent}` ({len(results)} cases)", "",
             "| Section | | Cases | " + " | ".join(cols) + " | Close not OK | Time (s) |",
             "| ---: | --- | ---: | " + " | ".join("---:" for _ in cols) + " | ---: | ---: |"]
    total = collections.Counter()
    for sec in sorted(by_section, key=int):
        cnt = by_section[sec]
        total.update(cnt)
        lines.append(f"| {sec} | {SECTIONS.get(sec, '')} | {sum(cnt.values())} | "
                     + " | ".join(str(cnt.get(c, 0)) for c in cols)
                     + f" | {close_bad[sec]} | {total_ms[sec] / 1000:.1f} |")
    lines.append(f"| **all** | | **{sum(total.values())}** | "
                 + " | ".join(f"**{total.get(c, 0)}**" for c in cols)
                 + f" | **{sum(close_bad.values())}** | **{sum(total_ms.values()) / 1000:.1f}** |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--index", default=os.path.join(here, "..", "target", "autobahn", "index.json"))
    ap.add_argument("--expected", default=os.path.join(here, "autobahn-expected.json"))
    ap.add_argument("--agent", help="agent name in index.json (default: the only one)")
    ap.add_argument("--update", action="store_true", help="rewrite the golden file from this report")
    ap.add_argument("--subset", action="store_true",
                    help="compare only the cases present in the report (a partial run)")
    ap.add_argument("--allow", default="", help="comma list of extra accepted verdicts, e.g. NON-STRICT")
    ap.add_argument("--summary-out", help="also write the Markdown summary to this file")
    args = ap.parse_args()

    agent, results = load_report(args.index, args.agent)
    accepted = ACCEPTED | {v.strip() for v in args.allow.split(",") if v.strip()}
    summary = summary_markdown(agent, results)
    print(summary)
    if args.summary_out:
        with open(args.summary_out, "w") as f:
            f.write(summary)

    problems = []
    for cid in sorted(results, key=case_key):
        r = results[cid]
        if r["behavior"] not in accepted or r["behaviorClose"] not in accepted:
            problems.append(f"case {cid}: behavior {r['behavior']}, close {r['behaviorClose']} "
                            f"(remote close code {r['remoteCloseCode']})")

    golden_now = {cid: {"behavior": results[cid]["behavior"], "behaviorClose": results[cid]["behaviorClose"]}
                  for cid in sorted(results, key=case_key)}
    if args.update:
        if args.subset:
            sys.exit("--update needs a full run (no AUTOBAHN_CASES subset)")
        with open(args.expected, "w") as f:
            json.dump({"tool": "autobahntestsuite 25.10.1 wstest -m fuzzingclient, cases 1.* - 10.*, 12.*, 13.*",
                       "cases": golden_now}, f, indent=1)
            f.write("\n")
        print(f"wrote {args.expected} ({len(golden_now)} cases)")
    else:
        if not os.path.exists(args.expected):
            problems.append(f"no golden file {args.expected}; run with --update once the results are right")
        else:
            with open(args.expected) as f:
                golden = json.load(f)["cases"]
            names = set(results) if args.subset else set(golden) | set(results)
            for cid in sorted(names, key=case_key):
                want, got = golden.get(cid), golden_now.get(cid)
                if want is None:
                    problems.append(f"case {cid}: not in the golden file (got {got})")
                elif got is None:
                    problems.append(f"case {cid}: in the golden file but not run (want {want})")
                elif want != got:
                    problems.append(f"case {cid}: differs from the golden file: want {want}, got {got}")

    if problems:
        print(f"{len(problems)} problem(s):")
        for p in problems:
            print("  " + p)
        print(f"autobahn: {len(results) - len({p.split(':')[0] for p in problems if p.startswith('case ')})} passed, "
              f"{len({p.split(':')[0] for p in problems if p.startswith('case ')})} failed")
        return 1
    print(f"autobahn: {len(results)} passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
