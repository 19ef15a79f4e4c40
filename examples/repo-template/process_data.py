"""Sum the revenue column of a CSV (run by flows/revenue.yml on its file input).

Prints ``Total revenues: N`` and, when run by flowbot, records N as the task
output ``total`` by appending ``total=<N>`` to the file named by $FLOWBOT_OUTPUT.
"""

import csv
import os
import sys
from decimal import Decimal, InvalidOperation


def total_revenue(path: str) -> Decimal:
    total = Decimal(0)
    with open(path, newline="", encoding="utf-8") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            try:
                total += Decimal(row["revenue"])
            except (KeyError, InvalidOperation):
                sys.exit(f"{path}:{line}: revenue is not a number: {row.get('revenue')!r}")
    return total


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else "data.csv"
    total = total_revenue(path)
    print(f"Total revenues: {total}")
    output = os.environ.get("FLOWBOT_OUTPUT")
    if output:
        with open(output, "a", encoding="utf-8") as handle:
            handle.write(f"total={total}\n")


if __name__ == "__main__":
    main()
