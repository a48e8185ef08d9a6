"""The human form of an ExportReport: one rich table."""

from __future__ import annotations

from rich.table import Table

from fashion_onnx.export.api import ExportReport


def _pct(value: float | None) -> str:
    return "n/a (no labels)" if value is None else f"{100 * value:.2f}%"


def report_title(report: ExportReport) -> str:
    """``Exported model.onnx``: printed as its own line (a table title is padded with
    spaces to the table's width)."""
    return f"Exported {report.path}"


def report_table(report: ExportReport) -> Table:
    table = Table(show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("architecture", report.architecture)
    table.add_row("file", f"{report.size_bytes:,} bytes, sha256 {report.sha256[:16]}…")
    table.add_row("opset", str(report.opset))
    table.add_row("source", f"{report.source_checkpoint} (sha256 {report.source_sha256[:16]}…)")
    parity = report.parity
    if parity is None:
        table.add_row("verification", "skipped")
    else:
        table.add_row("verified on", f"{parity.images:,} images: {parity.data}")
        table.add_row("batch sizes", ", ".join(map(str, parity.batch_sizes)))
        table.add_row("max |Δ| logits", f"{parity.max_abs_logits:.3g} (atol {report.atol:g})")
        table.add_row("max |Δ| probabilities", f"{parity.max_abs_probabilities:.3g}")
        if parity.max_abs_calibrated is not None:
            table.add_row("max |Δ| calibrated", f"{parity.max_abs_calibrated:.3g}")
        table.add_row("argmax agreement", f"{100 * parity.argmax_agreement:.2f}%")
        table.add_row(
            "accuracy torch / onnx", f"{_pct(parity.torch_accuracy)} / {_pct(parity.onnx_accuracy)}"
        )
    cal = report.calibration
    if cal is not None:
        table.add_row("temperature", f"{cal.temperature:.4f}, fitted on {cal.fitted_on}")
        if cal.ece_before is not None and cal.ece_after is not None:
            table.add_row(
                f"test ECE ({cal.ece_bins} bins)",
                f"{cal.ece_before:.4f} probabilities -> {cal.ece_after:.4f} calibrated",
            )
        if cal.ood_threshold is not None:
            table.add_row(
                "abstain above",
                f"{cal.ood_score} {cal.ood_threshold:.4f} "
                f"(keeps {100 * cal.ood_keep:.1f}% of test)",
            )
    for v in report.variants:
        delta = "n/a" if v.accuracy_delta_points is None else f"{v.accuracy_delta_points:+.2f} pts"
        table.add_row(
            v.precision,
            f"{v.path}: {v.size_bytes:,} bytes, accuracy {_pct(v.accuracy)} ({delta} vs fp32), "
            f"top-1 agreement {100 * v.argmax_agreement:.2f}%",
        )
        if v.choice:
            table.add_row("int8 method", v.choice)
    if report.photo:
        c = report.photo
        table.add_row(
            "photo model",
            f"{c['path']}: top-1 as the Python preparation on "
            f"{100 * float(str(c['top1_agreement'])):.1f}% of {c['photos']} photos, prepared "
            f"identical on {100 * float(str(c['prepared_identical'])):.0f}% (worst "
            f"{c['prepared_max_diff']} level); {c['squares']:,} 28x28 pictures: max |Δ| "
            f"probabilities {float(str(c['squares_max_abs_probabilities'])):.3g}",
        )
    return table
