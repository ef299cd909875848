"""Validates FHIR R4 JSON resources with an implementation independent of allot's: the
`fhir.resources` models (R4B, pydantic). Reads one JSON resource per line on stdin; prints
`OK N` when every one parses and validates, else each failure and exits 1."""
import json
import sys

from fhir.resources.R4B import get_fhir_model_class

failures = 0
count = 0
for number, line in enumerate(sys.stdin, 1):
    line = line.strip()
    if not line:
        continue
    count += 1
    try:
        data = json.loads(line)
        model = get_fhir_model_class(data["resourceType"])
        model.model_validate(data)
    except Exception as e:  # every failure is reported, with the resource's line
        failures += 1
        print(f"line {number}: {type(e).__name__}: {e}\n  {line[:400]}")
if failures:
    sys.exit(1)
print(f"OK {count}")
