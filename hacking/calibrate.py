"""Prints the CPU seconds a fixed pure-Python workload takes: the speed of this machine now.

The machines `make test` runs on are not equally fast from one hour to the next (the same workload has taken from
0.85 s to 1.6 s on one machine in one session); hacking/test.sh prints this before and after the stages, so that
two runs' times can be compared.
"""
import json
import time


def workload() -> None:
    table = {}
    for number in range(1_000_000):
        table[number % 1000] = str(number)
    json.loads(json.dumps([{"a": number, "b": [1, 2, 3], "c": "x" * 10} for number in range(100_000)]))

    def fibonacci(n):
        return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)

    fibonacci(23)


if __name__ == "__main__":
    start = time.process_time()
    workload()
    print("%.2f" % (time.process_time() - start))
