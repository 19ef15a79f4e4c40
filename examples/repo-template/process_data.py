"""Sum the revenue column of data.csv (run by flows/daily-revenue.yml).

Prints the total and, when run by flowbot, records it as the task output
``total`` by appending ``total=<n>`` to the file named by $FLOWBOT_OUTPUT.
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
    print(f"total revenue: {total}")
    output = os.environ.get("FLOWBOT_OUTPUT")
    if output:
        with open(output, "a", encoding="utf-8") as handle:
            handle.write(f"total={total}\n")


if __name__ == "__main__":
    main()
