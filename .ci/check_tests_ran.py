"""Fail loudly when a pytest run collected no test (an empty green run proves nothing)."""

import sys
import xml.etree.ElementTree as ET

root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
tests = sum(int(s.get("tests", 0)) for s in suites)
skipped = sum(int(s.get("skipped", 0)) for s in suites)
failed = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
print(f"tests: {tests} run, {skipped} skipped, {failed} failed")
if tests - skipped <= 0:
    sys.exit("no test ran: failing loudly")
sys.exit(1 if failed else 0)
