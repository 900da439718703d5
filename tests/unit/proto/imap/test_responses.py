from __future__ import annotations

import pytest

from kittiwake.proto.imap import responses as r
from kittiwake.proto.imap.responses import (
    BodyLiteral,
    CapabilityResponse,
    Continuation,
    EnabledResponse,
    ESearchResponse,
    Exists,
    Expunge,
    FetchResponse,
    FlagsResponse,
    IdResponse,
    ListResponse,
    NamespaceResponse,
    QuotaResponse,
    QuotaRootResponse,
    Recent,
    Response,
    ResponseCode,
    SearchResponse,
    SortResponse,
    Status,
    StatusResponse,
    Tagged,
    UntaggedStatus,
    Vanished,
)
from kittiwake.proto.imap.wire_format import encode_flag_list, encode_literal


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (r.TRYCREATE, b"[TRYCREATE]"),
        (r.READ_WRITE, b"[READ-WRITE]"),
        (r.READ_ONLY, b"[READ-ONLY]"),
        (r.CLOSED, b"[CLOSED]"),
        (r.NONEXISTENT, b"[NONEXISTENT]"),
        (r.ALREADYEXISTS, b"[ALREADYEXISTS]"),
        (r.TOOBIG, b"[TOOBIG]"),
        (r.SERVERBUG, b"[SERVERBUG]"),
        (r.CANNOT, b"[CANNOT]"),
        (r.LIMIT, b"[LIMIT]"),
        (r.OVERQUOTA, b"[OVERQUOTA]"),
        (r.NOPERM, b"[NOPERM]"),
        (r.INUSE, b"[INUSE]"),
        (r.EXPUNGEISSUED, b"[EXPUNGEISSUED]"),
        (r.AUTHENTICATIONFAILED, b"[AUTHENTICATIONFAILED]"),
        (r.ALERT, b"[ALERT]"),
        (r.UNAVAILABLE, b"[UNAVAILABLE]"),
        (r.NOMODSEQ, b"[NOMODSEQ]"),
        (r.UIDNOTSTICKY, b"[UIDNOTSTICKY]"),
        (ResponseCode.appenduid(38505, [3955]), b"[APPENDUID 38505 3955]"),
        (ResponseCode.appenduid(38505, [3955, 3956, 3957]), b"[APPENDUID 38505 3955:3957]"),
        (
            ResponseCode.copyuid(38505, [304, 319, 320], [3956, 3957, 3958]),
            b"[COPYUID 38505 304,319:320 3956:3958]",
        ),
        (ResponseCode.number("HIGHESTMODSEQ", 715194045007), b"[HIGHESTMODSEQ 715194045007]"),
        (ResponseCode.number("UIDVALIDITY", 3857529045), b"[UIDVALIDITY 3857529045]"),
        (ResponseCode.number("UIDNEXT", 4392), b"[UIDNEXT 4392]"),
        (
            ResponseCode.permanentflags(["\\Deleted", "\\Seen", "\\*"]),
            b"[PERMANENTFLAGS (\\Deleted \\Seen \\*)]",
        ),
        (ResponseCode.capability(["IMAP4rev2", "AUTH=PLAIN"]), b"[CAPABILITY IMAP4rev2 AUTH=PLAIN]"),
        (ResponseCode.modified([7, 9, 10, 11]), b"[MODIFIED 7,9:11]"),
        (ResponseCode.badcharset(["UTF-8", "US-ASCII"]), b"[BADCHARSET (UTF-8 US-ASCII)]"),
        (ResponseCode.badcharset([]), b"[BADCHARSET]"),
    ],
)
def test_response_code_serializes(code: ResponseCode, expected: bytes) -> None:
    assert code.serialize() == expected


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (Tagged(tag="a1", status=Status.OK, text="LOGIN completed"), b"a1 OK LOGIN completed\r\n"),
        (
            Tagged(
                tag="A003",
                status=Status.OK,
                text="APPEND completed",
                code=ResponseCode.appenduid(38505, [3955]),
            ),
            b"A003 OK [APPENDUID 38505 3955] APPEND completed\r\n",
        ),
        (
            Tagged(tag="A004", status=Status.NO, text="Mailbox does not exist", code=r.TRYCREATE),
            b"A004 NO [TRYCREATE] Mailbox does not exist\r\n",
        ),
        (Tagged(tag="x", status=Status.BAD, text="Missing argument"), b"x BAD Missing argument\r\n"),
        (
            Tagged(tag="a2", status=Status.OK, text="", code=r.READ_WRITE),
            b"a2 OK [READ-WRITE]\r\n",
        ),
        (UntaggedStatus(status=Status.OK, text="IMAP4rev2 ready"), b"* OK IMAP4rev2 ready\r\n"),
        (
            UntaggedStatus(
                status=Status.OK, text="UIDs valid", code=ResponseCode.number("UIDVALIDITY", 3857529045)
            ),
            b"* OK [UIDVALIDITY 3857529045] UIDs valid\r\n",
        ),
        (
            UntaggedStatus(status=Status.OK, text="Previous mailbox closed", code=r.CLOSED),
            b"* OK [CLOSED] Previous mailbox closed\r\n",
        ),
        (UntaggedStatus(status=Status.BYE, text="Logging out"), b"* BYE Logging out\r\n"),
        (UntaggedStatus(status=Status.PREAUTH, text="Welcome"), b"* PREAUTH Welcome\r\n"),
        (
            UntaggedStatus(status=Status.NO, text="Disk is 98% full", code=r.ALERT),
            b"* NO [ALERT] Disk is 98% full\r\n",
        ),
        (UntaggedStatus(status=Status.BAD, text="Line too long"), b"* BAD Line too long\r\n"),
        (Exists(count=172), b"* 172 EXISTS\r\n"),
        (Recent(count=1), b"* 1 RECENT\r\n"),
        (Expunge(sequence_number=44), b"* 44 EXPUNGE\r\n"),
        (Vanished(uids=(405, 406, 407, 408, 409, 410, 411)), b"* VANISHED 405:411\r\n"),
        (Vanished(uids=(41, 43, 44, 45, 116), earlier=True), b"* VANISHED (EARLIER) 41,43:45,116\r\n"),
        (
            FlagsResponse(flags=("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")),
            b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n",
        ),
        (
            CapabilityResponse(capabilities=("IMAP4rev2", "IDLE", "AUTH=PLAIN")),
            b"* CAPABILITY IMAP4rev2 IDLE AUTH=PLAIN\r\n",
        ),
        (EnabledResponse(capabilities=("UTF8=ACCEPT",)), b"* ENABLED UTF8=ACCEPT\r\n"),
        (EnabledResponse(capabilities=()), b"* ENABLED\r\n"),
    ],
)
def test_status_and_simple_responses_serialize(response: Response, expected: bytes) -> None:
    assert response.serialize() == expected


def test_tagged_response_cannot_be_bye() -> None:
    with pytest.raises(ValueError):
        Tagged(tag="a", status=Status.BYE, text="no").serialize()


def test_response_text_cannot_break_the_line() -> None:
    response = Tagged(tag="a1", status=Status.NO, text="bad\r\n* OK injected")
    assert response.serialize() == b"a1 NO bad  * OK injected\r\n"


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (Continuation(text="Ready for literal data"), b"+ Ready for literal data\r\n"),
        (Continuation(), b"+ \r\n"),
        (Continuation(challenge=b""), b"+ \r\n"),
        (Continuation(challenge=b"r=abc,s=c2FsdA==,i=4096"), b"+ cj1hYmMscz1jMkZzZEE9PSxpPTQwOTY=\r\n"),
    ],
)
def test_continuation_serializes_text_or_base64(response: Continuation, expected: bytes) -> None:
    assert response.serialize() == expected


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (
            ListResponse(attributes=("\\HasNoChildren",), delimiter="/", name="INBOX"),
            b'* LIST (\\HasNoChildren) "/" INBOX\r\n',
        ),
        (
            ListResponse(attributes=("\\Noselect",), delimiter="/", name="Sent Items"),
            b'* LIST (\\Noselect) "/" "Sent Items"\r\n',
        ),
        (ListResponse(attributes=(), delimiter=None, name="foo"), b"* LIST () NIL foo\r\n"),
        (
            ListResponse(attributes=(), delimiter="/", name="Entw\u00fcrfe"),
            b'* LIST () "/" Entw&APw-rfe\r\n',
        ),
        (
            ListResponse(attributes=(), delimiter="/", name="Entw\u00fcrfe", utf8=True),
            b'* LIST () "/" "Entw\xc3\xbcrfe"\r\n',
        ),
        (
            ListResponse(
                attributes=("\\NonExistent",), delimiter="/", name="Foo", child_info=("SUBSCRIBED",)
            ),
            b'* LIST (\\NonExistent) "/" Foo ("CHILDINFO" ("SUBSCRIBED"))\r\n',
        ),
        (
            ListResponse(attributes=(), delimiter="/", name="New", old_name="Old"),
            b'* LIST () "/" New ("OLDNAME" (Old))\r\n',
        ),
        (
            ListResponse(attributes=("\\HasNoChildren",), delimiter=".", name="INBOX", lsub=True),
            b'* LSUB (\\HasNoChildren) "." INBOX\r\n',
        ),
    ],
)
def test_list_and_lsub_serialize(response: ListResponse, expected: bytes) -> None:
    assert response.serialize() == expected


def test_status_response_keeps_item_order() -> None:
    response = StatusResponse(mailbox="blurdybloop", items=(("MESSAGES", 231), ("UIDNEXT", 44292)))
    assert response.serialize() == b"* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n"


def test_status_response_quotes_a_name_with_space() -> None:
    response = StatusResponse(mailbox="Sent Items", items=(("UNSEEN", 0),))
    assert response.serialize() == b'* STATUS "Sent Items" (UNSEEN 0)\r\n'


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (SearchResponse(numbers=(2, 3, 6)), b"* SEARCH 2 3 6\r\n"),
        (SearchResponse(numbers=()), b"* SEARCH\r\n"),
        (
            SearchResponse(numbers=(2, 5, 6, 7, 11, 12, 18, 19, 20, 23), modseq=917162500),
            b"* SEARCH 2 5 6 7 11 12 18 19 20 23 (MODSEQ 917162500)\r\n",
        ),
        (SortResponse(numbers=(2, 84, 882)), b"* SORT 2 84 882\r\n"),
        (SortResponse(numbers=()), b"* SORT\r\n"),
        (SortResponse(numbers=(5, 3), modseq=12), b"* SORT 5 3 (MODSEQ 12)\r\n"),
    ],
)
def test_search_and_sort_responses_serialize(response: Response, expected: bytes) -> None:
    assert response.serialize() == expected


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (
            ESearchResponse(tag="A282", uid=False, min=2, count=3),
            b'* ESEARCH (TAG "A282") MIN 2 COUNT 3\r\n',
        ),
        (
            ESearchResponse(tag="A283", uid=True, all=(2, 10, 11)),
            b'* ESEARCH (TAG "A283") UID ALL 2,10:11\r\n',
        ),
        (
            ESearchResponse(tag="A284", uid=True, min=4, max=9, count=5, all=(4, 5, 6, 7, 9)),
            b'* ESEARCH (TAG "A284") UID MIN 4 MAX 9 COUNT 5 ALL 4:7,9\r\n',
        ),
        (ESearchResponse(tag="A285", uid=False, count=0), b'* ESEARCH (TAG "A285") COUNT 0\r\n'),
        (ESearchResponse(tag="A286", uid=False, all=()), b'* ESEARCH (TAG "A286")\r\n'),
        (ESearchResponse(tag=None, uid=False), b"* ESEARCH\r\n"),
        (
            ESearchResponse(tag="a", uid=True, max=20, modseq=917162500),
            b'* ESEARCH (TAG "a") UID MAX 20 MODSEQ 917162500\r\n',
        ),
    ],
)
def test_esearch_serializes_only_the_items_given(response: ESearchResponse, expected: bytes) -> None:
    assert response.serialize() == expected


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (NamespaceResponse(personal=(("", "/"),)), b'* NAMESPACE (("" "/")) NIL NIL\r\n'),
        (
            NamespaceResponse(
                personal=(("", "/"),),
                other_users=(("~", "/"),),
                shared=(("#shared/", "/"), ("#public", None)),
            ),
            b'* NAMESPACE (("" "/")) (("~" "/")) (("#shared/" "/")("#public" NIL))\r\n',
        ),
        (NamespaceResponse(personal=(("INBOX.", "."),)), b'* NAMESPACE (("INBOX." ".")) NIL NIL\r\n'),
    ],
)
def test_namespace_serializes(response: NamespaceResponse, expected: bytes) -> None:
    assert response.serialize() == expected


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (IdResponse(fields=None), b"* ID NIL\r\n"),
        (
            IdResponse(fields=(("name", "kittiwake"), ("version", "0.1"), ("support-url", None))),
            b'* ID ("name" "kittiwake" "version" "0.1" "support-url" NIL)\r\n',
        ),
    ],
)
def test_id_serializes(response: IdResponse, expected: bytes) -> None:
    assert response.serialize() == expected


def test_quota_and_quotaroot_serialize() -> None:
    assert (
        QuotaResponse(root="", resources=(("STORAGE", 10, 512),)).serialize()
        == b'* QUOTA "" (STORAGE 10 512)\r\n'
    )
    assert (
        QuotaResponse(root="user", resources=(("STORAGE", 10, 512), ("MESSAGE", 3, 1000))).serialize()
        == b"* QUOTA user (STORAGE 10 512 MESSAGE 3 1000)\r\n"
    )
    assert QuotaRootResponse(mailbox="INBOX", roots=("",)).serialize() == b'* QUOTAROOT INBOX ""\r\n'
    assert (
        QuotaRootResponse(mailbox="comp.mail.mime", roots=()).serialize() == b"* QUOTAROOT comp.mail.mime\r\n"
    )


def test_fetch_response_with_prepared_values_serializes_in_item_order() -> None:
    response = FetchResponse(
        sequence_number=12,
        items=(
            ("UID", b"4827313"),
            ("FLAGS", encode_flag_list(["\\Seen"])),
            ("RFC822.SIZE", b"44827"),
            ("INTERNALDATE", b'"17-Jul-1996 02:44:25 -0700"'),
        ),
    )
    assert response.serialize() == (
        b'* 12 FETCH (UID 4827313 FLAGS (\\Seen) RFC822.SIZE 44827 INTERNALDATE "17-Jul-1996 02:44:25 -0700")\r\n'
    )


def test_fetch_response_with_small_literal_serializes_whole() -> None:
    response = FetchResponse(
        sequence_number=1, items=(("BODY[HEADER.FIELDS (SUBJECT)]", encode_literal(b"Subject: x\r\n\r\n")),)
    )
    assert response.serialize() == b"* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {14}\r\nSubject: x\r\n\r\n)\r\n"


def test_fetch_response_streams_large_bodies_as_markers() -> None:
    body = BodyLiteral(size=52_428_800, source=("blob-key", 0, 52_428_800))
    response = FetchResponse(
        sequence_number=3, items=(("UID", b"105"), ("BODY[]", body), ("FLAGS", b"(\\Seen)"))
    )
    assert response.serialize_parts() == [
        b"* 3 FETCH (UID 105 BODY[] {52428800}\r\n",
        body,
        b" FLAGS (\\Seen))\r\n",
    ]


def test_fetch_response_streams_several_literals_and_literal8() -> None:
    first = BodyLiteral(size=10, source="a")
    second = BodyLiteral(size=4, source="b", binary=True)
    response = FetchResponse(sequence_number=7, items=(("BODY[1]<0>", first), ("BINARY[2]", second)))
    assert response.serialize_parts() == [
        b"* 7 FETCH (BODY[1]<0> {10}\r\n",
        first,
        b" BINARY[2] ~{4}\r\n",
        second,
        b")\r\n",
    ]


def test_fetch_response_with_markers_refuses_whole_serialization() -> None:
    response = FetchResponse(sequence_number=1, items=(("BODY[]", BodyLiteral(size=1, source=None)),))
    with pytest.raises(ValueError):
        response.serialize()


def test_fetch_response_without_markers_is_one_part() -> None:
    response = FetchResponse(sequence_number=2, items=(("UID", b"9"),))
    assert response.serialize_parts() == [b"* 2 FETCH (UID 9)\r\n"]
