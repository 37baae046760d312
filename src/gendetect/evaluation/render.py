"""Write a protocol report as JSON, Markdown and one self-contained HTML page (plots inlined as PNG).

The HTML renders the Markdown parts (header, audit, notes) with the ``markdown`` package and the plots with
matplotlib (both in the ``report`` extra); without them the JSON and Markdown are still written and the HTML shows
the Markdown as preformatted text and says which plots are missing and why.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from pathlib import Path
from typing import Any

from gendetect.output import json_safe


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, list | tuple) and len(v) == 2 and all(isinstance(x, float) for x in v):
        return f"[{v[0]:.3f}, {v[1]:.3f}]"
    return str(v)


_PIXEL_CHECKS = (("border", "border / frame"), ("text_strip", "bottom and top strips"), ("content", "content"))
WORST = (
    ("false_positives", "Worst false positives (real images called fake, highest score first)"),
    ("false_negatives", "Worst false negatives (fakes missed, lowest score first)"),
)


def _audit_markdown(audit: dict[str, Any]) -> list[str]:
    """Every warning as a bold quote, then one line per check (file facts and, when run, the pixel checks)."""
    if not audit:
        return []
    warnings = audit.get("warnings")
    if warnings is None:  # a report written before the pixel checks
        warnings = [audit["message"]] if audit.get("flagged") and audit.get("message") else []
    lines = [line for w in warnings for line in (f"> **{w}**", "")]
    checks = [("file facts", audit)] + [(title, audit[k]) for k, title in _PIXEL_CHECKS if k in audit]
    if any(c.get("auc") is not None for _, c in checks):
        lines += ["Shortcut audit (chance is AUC 0.50; a warning needs chance + margin):", ""]
        lines += ["| check | AUC | inside the picture | warns |", "|---|---|---|---|"]
        for title, c in checks:
            warn = c.get("warn", c.get("flagged"))
            row = [title, _fmt(c.get("auc")), _fmt(c.get("baseline_auc")), "yes" if warn else "no"]
            lines.append("| " + " | ".join(row) + " |")
        frac = (audit.get("content") or {}).get("illustration_fraction")
        if frac:
            lines += [
                "",
                f"Illustration-like images (content model): {100 * frac['real']:.0f}% of reals, "
                f"{100 * frac['fake']:.0f}% of fakes.",
            ]
        lines.append("")
    elif not warnings and audit.get("message"):
        lines += [f"_{audit['message']}_", ""]
    return lines


def _worst_markdown(worst: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for key, title in WORST:
        if key not in worst:
            continue
        lines += [f"## {title}", ""]
        items = worst[key]
        if not items:
            lines += ["none", ""]
            continue
        lines += ["| file | generator | P(fake) |", "|---|---|---|"]
        lines += [f"| {os.path.basename(it['path'])} | {it['generator']} | {it['p_fake']:.3f} |" for it in items]
        lines.append("")
    return lines


def to_markdown(report: dict[str, Any]) -> str:
    lines = [f"# gendetect evaluation: {report['protocol']}", ""]
    if report.get("model"):
        lines.append(f"Model **{report['model']}**, threshold {_fmt(report.get('threshold'))}.")
    data = report.get("data", {})
    lines += [
        f"Data: {data.get('n_images')} images ({data.get('n_unreadable')} unreadable), labels "
        f"{data.get('labels')}, fingerprint `{data.get('fingerprint')}`.",
        "",
    ]
    lines += _audit_markdown(report.get("audit") or {})
    for t in report.get("tables", []):
        lines += [f"## {t['title']}", ""]
        lines.append("| " + " | ".join(t["columns"]) + " |")
        lines.append("|" + "---|" * len(t["columns"]))
        for row in t["rows"]:
            lines.append("| " + " | ".join(_fmt(v) for v in row) + " |")
        if t.get("note"):
            lines += ["", t["note"]]
        lines.append("")
    lines += _worst_markdown(report.get("worst") or {})
    lines += ["## Configuration", "", "```json", json.dumps(report.get("config"), indent=2), "```", ""]
    versions = report.get("provenance", {}).get("versions", {})
    lines.append(f"Created {report.get('provenance', {}).get('created')} with {json.dumps(versions)}.")
    return "\n".join(lines) + "\n"


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def figures(report: dict[str, Any]) -> dict[str, str]:
    """Base64 PNGs of the report's plots, keyed by title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: dict[str, str] = {}
    figs = report.get("figures", {})
    if "roc" in figs:
        fig, ax = plt.subplots(figsize=(5.5, 5))
        for name, c in figs["roc"].items():
            ax.plot(c["fpr"], c["tpr"], lw=2.5 if name == "all" else 1.2, label=name)
        ax.plot([0, 1], [0, 1], "k:", lw=0.8)
        ax.set(xlabel="false-positive rate (reals called fake)", ylabel="true-positive rate", title="ROC")
        ax.legend(fontsize=7, loc="lower right")
        out["ROC curves"] = _png(fig)
    if "histogram" in figs:
        h = figs["histogram"]
        fig, ax = plt.subplots(figsize=(6, 3.2))
        centres = [(a + b) / 2 for a, b in zip(h["edges"][:-1], h["edges"][1:])]
        width = h["edges"][1] - h["edges"][0]
        ax.bar(centres, h["real"], width=width, alpha=0.6, label="real", color="tab:green")
        ax.bar(centres, h["fake"], width=width, alpha=0.6, label="fake", color="tab:red")
        if report.get("threshold") is not None:
            ax.axvline(report["threshold"], color="k", ls="--", lw=1, label="threshold")
        ax.set(xlabel="P(fake)", ylabel="images", title="Scores of real and fake images")
        ax.legend()
        out["Score histograms"] = _png(fig)
    for key in ("cross_generator", "cross_generator_fpr", "robustness", "feature_comparison"):
        if key in figs:
            m = figs[key]
            fig, ax = plt.subplots(figsize=(1.0 + 0.55 * len(m["cols"]), 1.0 + 0.45 * len(m["rows"])))
            im = ax.imshow(
                [[math.nan if v is None else v for v in row] for row in m["values"]],
                vmin=0,
                vmax=1,
                cmap="RdYlGn_r" if m.get("lower_is_better") else "RdYlGn",
            )
            ax.set_xticks(range(len(m["cols"])), m["cols"], rotation=60, ha="right", fontsize=8)
            ax.set_yticks(range(len(m["rows"])), m["rows"], fontsize=8)
            for i, row in enumerate(m["values"]):
                for j, v in enumerate(row):
                    if v is not None and not math.isnan(v):
                        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7)
            ax.set_title(m["title"], fontsize=9)
            fig.colorbar(im, ax=ax, fraction=0.03)
            out[m["title"]] = _png(fig)
    if "generator_count" in figs:
        g = figs["generator_count"]
        fig, ax = plt.subplots(figsize=(5, 3.2))
        ax.errorbar(g["x"], g["mean"], yerr=g["std"], marker="o", capsize=3)
        ax.set(xscale="log", xlabel="training generators", ylabel="AUC on unseen generators", ylim=(0, 1))
        ax.set_xticks(g["x"], [str(x) for x in g["x"]])
        out["AUC against the number of training generators"] = _png(fig)
    return out


def _thumb(path: str, size: int = 160) -> str | None:
    try:
        from gendetect.imageio import load_image

        im = load_image(path)
    except Exception:  # noqa: BLE001 - a missing thumbnail must not stop the report
        return None
    im.thumbnail((size, size))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=85)
    return base64.b64encode(buf.getvalue()).decode()


def markdown_to_html(text: str) -> str:
    """Render Markdown (with tables) as HTML. Raw HTML in ``text`` is escaped, not passed through.

    Needs the ``markdown`` package (the ``report`` extra); without it the text is shown preformatted.
    """
    safe = text.replace("&", "&amp;").replace("<", "&lt;")
    try:
        import markdown
    except ImportError:
        hint = "Rendered Markdown needs the markdown package: pip install 'gendetect[report]'."
        return f"<pre>{safe}</pre><p><i>{hint}</i></p>"
    rendered = markdown.markdown(safe, extensions=["tables", "fenced_code"])
    return rendered.replace("<blockquote>", "<blockquote class='warn'>")


def to_html(report: dict[str, Any]) -> str:
    e = html.escape
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>gendetect: {e(report['protocol'])}"
        "</title><style>body{font:14px/1.4 system-ui,sans-serif;max-width:1100px;margin:auto;padding:1rem}"
        "table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:2px 6px;"
        "text-align:right}td:first-child,th:first-child{text-align:left}.warn{background:#fff3cd;padding:"
        ".6rem;border:1px solid #e0b000;margin:.5rem 0}.thumbs{display:flex;flex-wrap:wrap;gap:8px}"
        ".thumbs figure{margin:0;width:160px;font-size:11px;word-break:break-all}"
        ".plots{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start}.plots figure{margin:0}"
        "</style></head><body>"
    ]
    parts.append(markdown_to_html(to_markdown(report).split("\n## ")[0]))  # title, model, data and the audit
    for t in report.get("tables", []):
        parts.append(
            f"<h2>{e(t['title'])}</h2><table><tr>" + "".join(f"<th>{e(c)}</th>" for c in t["columns"]) + "</tr>"
        )
        for row in t["rows"]:
            parts.append("<tr>" + "".join(f"<td>{e(_fmt(v))}</td>" for v in row) + "</tr>")
        parts.append("</table>")
        if t.get("note"):
            parts.append(f"<small>{markdown_to_html(t['note'])}</small>")
    try:
        plots = figures(report)
    except ImportError:
        plots = {}
        parts.append("<p><i>Plots need matplotlib: pip install 'gendetect[report]'.</i></p>")
    if plots:  # side by side where the page is wide enough (the AUC and FPR matrices of cross-generator)
        parts.append("<div class='plots'>")
        for title, b64 in plots.items():
            parts.append(
                f"<figure><h2>{e(title)}</h2><img alt='{e(title)}' src='data:image/png;base64,{b64}'></figure>"
            )
        parts.append("</div>")
    worst = report.get("worst") or {}
    for key, title in WORST:
        if key not in worst:
            continue
        items = worst[key] or []
        parts.append(f"<h2>{e(title)}</h2>")
        if not items:
            parts.append("<p>none</p>")
            continue
        parts.append("<div class='thumbs'>")
        for it in items:
            b64 = _thumb(it["path"])
            img = f"<img src='data:image/jpeg;base64,{b64}' alt=''>" if b64 else "(unreadable)"
            parts.append(
                f"<figure>{img}<figcaption>P(fake) {it['p_fake']:.3f} · {e(str(it['generator']))}<br>"
                f"{e(os.path.basename(it['path']))}</figcaption></figure>"
            )
        parts.append("</div>")
    parts.append(f"<h2>Configuration</h2><pre>{e(json.dumps(report.get('config'), indent=2))}</pre>")
    parts.append(f"<p><small>{e(json.dumps(report.get('provenance')))}</small></p></body></html>")
    return "".join(parts)


def write_report(report: dict[str, Any], out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and ``report.html`` into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "md": out / "report.md", "html": out / "report.html"}
    paths["json"].write_text(json.dumps(json_safe(report), indent=2, allow_nan=False) + "\n")
    paths["md"].write_text(to_markdown(report))
    paths["html"].write_text(to_html(report))
    return paths
