import base64
import json

import pytest

from mlops_core.sagemaker.capture import capture_files, parse_capture_line, read_capture

DESTINATION = "s3://abalone-bucket/abalone/data-capture"


def record(event_id, data, encoding="CSV", content_type="text/csv", output="9.5"):
    return json.dumps({
        "captureData": {
            "endpointInput": {"observedContentType": content_type, "mode": "INPUT", "data": data,
                              "encoding": encoding},
            "endpointOutput": {"observedContentType": "text/csv; charset=utf-8", "mode": "OUTPUT",
                               "data": output, "encoding": "CSV"}},
        "eventMetadata": {"eventId": event_id, "inferenceTime": "2026-11-28T05:00:00Z"},
        "eventVersion": "0"})


@pytest.fixture
def captured(aws):
    aws.s3.create_bucket(Bucket="abalone-bucket")
    files = {
        "abalone/data-capture/abalone/AllTraffic/2026/11/28/05/a.jsonl": [
            record("1", "M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15"),
            record("2", base64.b64encode(b'{"instances": [[1, 2]]}').decode(), "BASE64", "application/json")],
        "abalone/data-capture/abalone/AllTraffic/2026/11/28/04/b.jsonl": [record("0", "F,1,1,1,1,1,1,1")],
        "abalone/data-capture/abalone/Shadow/2026/11/28/05/c.jsonl": [record("9", "I,1,1,1,1,1,1,1")],
        "abalone/data-capture/abalone-2/AllTraffic/2026/11/28/05/d.jsonl": [record("x", "I,2,2,2,2,2,2,2")],
        "abalone/data-capture/abalone/AllTraffic/2026/11/28/05/notes.txt": ["not capture"],
    }
    for key, lines in files.items():
        aws.s3.put_object(Bucket="abalone-bucket", Key=key, Body=("\n".join(lines) + "\n").encode())
    return aws


def test_reads_every_record_of_the_endpoint_oldest_file_first(captured):
    records = list(read_capture(DESTINATION, "abalone", variant="AllTraffic", clients=captured))
    assert [r.event_id for r in records] == ["0", "1", "2"]
    assert records[1].input_data.startswith("M,0.455") and records[1].input_content_type == "text/csv"
    assert records[2].input_data == '{"instances": [[1, 2]]}'  # BASE64 decoded
    assert records[2].output_data == "9.5" and records[2].inference_time == "2026-11-28T05:00:00Z"


def test_all_variants_but_not_other_endpoints_with_the_same_prefix(captured):
    files = capture_files(DESTINATION, "abalone", clients=captured)
    assert len(files) == 3 and not any("abalone-2" in f or f.endswith(".txt") for f in files)
    assert {r.event_id for r in read_capture(DESTINATION, "abalone", clients=captured)} == {"0", "1", "2", "9"}


def test_parse_keeps_the_raw_record():
    parsed = parse_capture_line(record("7", "x"))
    assert parsed.raw["eventVersion"] == "0" and parsed.output_content_type.startswith("text/csv")
    with pytest.raises(ValueError):
        parse_capture_line("{broken")
