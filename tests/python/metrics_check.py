"""Scrape a Hortator /metrics endpoint in both exposition formats and check it with the
official Prometheus client's parsers.

usage: metrics_check.py URL SAMPLE...

Each SAMPLE is a sample name (`apiserver_request_total`, `..._seconds_count`) that must
appear with a positive value summed over its label sets; `NAME=any` only requires that it
appears.
"""

import sys
import urllib.request

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text


def fetch(url, accept):
    request = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers.get("Content-Type", ""), response.read().decode()


def sums(families):
    totals = {}
    for family in families:
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


def main():
    url, wanted = sys.argv[1], sys.argv[2:]
    content_type, text = fetch(url, "text/plain;version=0.0.4")
    if not content_type.startswith("text/plain; version=0.0.4"):
        sys.exit(f"text format served as {content_type!r}")
    text_totals = sums(parse_text(text))
    content_type, text = fetch(
        url, "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"
    )
    if not content_type.startswith("application/openmetrics-text"):
        sys.exit(f"OpenMetrics served as {content_type!r}")
    open_totals = sums(parse_openmetrics(text))
    problems = []
    for spec in wanted:
        name, _, rule = spec.partition("=")
        for fmt, totals in (("text", text_totals), ("OpenMetrics", open_totals)):
            if name not in totals:
                problems.append(f"{name} missing ({fmt})")
            elif rule != "any" and totals[name] <= 0:
                problems.append(f"{name} is {totals[name]} ({fmt})")
    if problems:
        sys.exit("\n".join(problems))
    for spec in wanted:
        name = spec.partition("=")[0]
        print(f"{name} {text_totals[name]}")


main()
