"""The privacy detector on its own: the labelled corpus (tests/privacy_corpus.jsonl), every secret shape
and privacy-word variant named in issue 12, where a finding is (line and column in the text as given),
redaction by the same scan, linear behaviour on hostile inputs, and detect-secrets loaded only at the
first check. Timings are measured by `python -m bench privacy`, never asserted here."""
import base64
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from inference_magics import secret_scan
from inference_magics.privacy import classify, find_privacy_word, find_secret, redact_secrets

CORPUS = Path(__file__).with_name("privacy_corpus.jsonl")
ROWS = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
PRIVATE = [r for r in ROWS if r["private"]]
BENIGN = [r for r in ROWS if not r["private"]]


def test_the_corpus_is_big_and_varied_enough():
    assert len(ROWS) >= 300 and len(PRIVATE) >= 200 and len(BENIGN) >= 100
    assert len({r["kind"] for r in PRIVATE}) >= 60
    assert {r["lang"] for r in PRIVATE} >= {"en", "de", "fr", "es", "it", "pt", "nl", "ja", "zh", "ko", "ru"}


def test_corpus_recall_and_false_alarms():
    missed = [r for r in PRIVATE if classify(r["text"]) is None]
    alarms = [(r["text"], classify(r["text"]).describe()) for r in BENIGN if classify(r["text"]) is not None]
    assert 1 - len(missed) / len(PRIVATE) >= 0.99, missed
    assert len(alarms) / len(BENIGN) <= 0.02, alarms


def test_every_labelled_kind_is_caught():
    by_kind = defaultdict(list)
    for row in PRIVATE:
        by_kind[row["kind"]].append(classify(row["text"]) is not None)
    uncovered = sorted(kind for kind, caught in by_kind.items() if not any(caught))
    assert not uncovered


def test_redaction_leaves_no_secret_behind():
    for row in PRIVATE:
        if find_secret(row["text"]) is None:
            continue  # a privacy word, not a secret: redaction leaves the text as it is
        clean = redact_secrets(row["text"])
        assert "[redacted: " in clean, row
        assert find_secret(clean) is None, (row, clean, find_secret(clean))
    for row in BENIGN:
        assert redact_secrets(row["text"]) == row["text"]


# --- every shape named in the issue ------------------------------------------------------------------
AKIA = "AKIAZ4XQ7PLM2VB8KRTA"
AWS_SECRET = "Zk8pQ2vN7rT4xW9bL1mC6yH3sD5fJ0gA/uE+oR2i"
ISSUE_SHAPES = [
    "DB_PASS=Quartz-Lamp-81",
    "SMTP_PASS=Mx7!rTq2pL",
    "$db = ['password' => 'Violet#Ferry22'];",
    "the password for the reporting database is Orchid-Falls-55",
    "Das Passwort lautet Nebel-Turm-19",
    "La contraseña es Ciruela-Roja-37",
    "curl -u deploy:Saffron7Kite https://ci.example.org/api",
    "Authorization: Basic ZGVwbG95OlNhZmZyb243S2l0ZQ==",
    "Authorization: token 3f9c2a7e1b6d4058a9e2c7b1d3f60a8e4c2b9d71",
    "REDIS_URL=redis://:Pl4tinum-Owl@cache.internal:6379/0",
    "postgres://app:ab/Cd9-Ef@db.internal:5432/prod",
    "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=" + "Qm9yZWFsaXNCb3JlYWxpcw" * 4 + "==",
    "Endpoint=sb://acme.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey=Vx3nB8qL2mP7rT1yW6zK9cF4hJ0dS5gA2eU8iO3pQ7s=",
    "HF_TOKEN=hf_QwErTyUiOpAsDfGhJkLzXcVbNm1234567890",
    "glpat-Xy7Kp2Lm9Qr4Tv8Wz1Bc",
    "//registry.npmjs.org/:_authToken=npm_Ab3De6Gh9Jk2Mn5Pq8St1Vw4Yz7Bc0Ef3Hi6",
    "SG.Ab3De6Gh9Jk2Mn5Pq8St1V.Wx4Yz7Bc0Ef3Hi6Kl9No2Qr5Tu8Wx1Za4Cd7Fg0Ij3Lm",
    "SLACK_APP_TOKEN=xapp-1-A0123BCDEF4-5678901234567-" + "ab12" * 16,
    "STRIPE_WEBHOOK_SECRET=whsec_Qa7Ws2Ed4Rf6Tg8Yh1Uj3Ik5Ol9Pz0Xc",
    "https://hooks.slack.com/services/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J",
    "bot = Bot('7301428856:AAFq8Zr2Kx7Wm4Np1Lt6Vb9Hc3Jd5Gs0Yez')",
    "client.run('MTE4NDU2Nzg5MDEyMzQ1Njc4OQ.GaBcDe.f9Xy8Zw7Vu6Ts5Rq4Po3Nm2Lk1Jh0GfEdCb')",
    "client = Client('AC0f9e8d7c6b5a49382716a5b4c3d2e1f0', auth_token)",
    "mailchimp key 0a1b2c3d4e5f60718293a4b5c6d7e8f9-us14",
    f"the IAM wizard showed {AKIA} and then {AWS_SECRET}",
    f"here it is: {AWS_SECRET}",
    "config value: " + base64.b64encode(b"sk-ant-api03-" + b"Qx7Lm2Np9Rt4Vw8Zb1Cd5Fg3Hj6Kp0Sa").decode(),
    "employee SSN 536 27 4812",
    "card 4539.5787.6362.1486 exp 09/29",
    "iban de89 3704 0044 0532 0130 00",
    "MIIEowIBAAKCAQEA3Xk9Lq2Wm7Rt4Vb8Nc1Zp6Hy3Jd5Gs0Fe9Ka2Qu7Io4Pl1Mn8Bv",
    "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: ci\nPublic-Lines: 2\nAAAAC3NzaC1lZDI1NTE5",
]


@pytest.mark.parametrize("text", ISSUE_SHAPES)
def test_every_shape_the_hostile_test_used_is_a_secret(text):
    assert find_secret(text) is not None


ISSUE_WORDS = [
    "Don’t send this anywhere: my diary.", "Under the confidentiality clause, rewrite this.", "Our NDAs cover this memo.",
    "Vertraulich: Vorstandsprotokoll.", "Confidentiel : rapport d'audit.", "機密資料を要約して", "conf\u200bidential plans",
    "This is сonfidential", "ＣＯＮＦＩＤＥＮＴＩＡＬ board deck", "c0nfidential numbers", "keep this secret: we buy Initech",
    "do not distribute — layoff list", "Dit is vertrouwelijk", "Riservato: verbale", "Não compartilhe: resultados",
    "Конфиденциально: протокол", "대외비 문서", "这是机密", "Confidencial: contrato",
]


@pytest.mark.parametrize("text", ISSUE_WORDS)
def test_privacy_words_survive_how_people_type(text):
    assert find_privacy_word(text) is not None


@pytest.mark.parametrize("text", [
    "Explain public/private key cryptography", "Explain Python's private name mangling",
    "password = getpass.getpass()", "token = request.headers.get('Authorization')", "private int x = 0;",
    "Why can't I call a private method from a subclass?", "sha256: " + "9f" * 32,
    "id 3f2b8c1e-9d4a-4c7b-a1e2-5f6a7b8c9d0e", "export OPENAI_API_KEY=YOUR_API_KEY", "Authorization: Bearer <token>",
    "password: ${DB_PASSWORD}", "api_key = os.environ['API_KEY']",
])
def test_programming_and_placeholders_are_not_private(text):
    assert classify(text) is None, classify(text)


def test_getpass_is_now_benign_but_a_literal_password_is_not():
    assert find_secret("password = getpass.getpass()") is None
    assert find_secret("password = 'Tr0ub4dor&3'") is not None


# --- where --------------------------------------------------------------------------------------------
def test_a_finding_says_where_in_the_text_as_given_never_the_value():
    text = "first line\nsecond: DB_PASS=Quartz-Lamp-81"
    found = find_secret(text)
    assert (found.line, found.column) == (2, 17)
    assert found.describe() == "a password at line 2, column 17"
    assert "Quartz" not in found.describe()
    # positions count the characters the user typed, zero-width and full-width ones included
    word = find_privacy_word("ｘ\u200bｙ\nok, c\u200bonfidential")
    assert (word.line, word.column) == (2, 5)


def test_secrets_written_with_look_alike_characters_are_found_where_they_were_typed():
    """Full-width letters, a Cyrillic letter or a zero-width space inside a label or a token: the
    finding's line and column, and the redaction, are in the text as given."""
    token = "Zq7Rt2Lm9Xc4Vb8Nk1Hs6Jd3Fw5Gy0Pa2Ue"
    for text, label, where in [
        ("x\nｐａｓｓｗｏｒｄ：Sunfl0wer#Riv3r", "a password", (2, 10)),
        ("hi —\nDB_PASS\u200bWORD=Tr0ub4dor&3xq", "a password", (2, 14)),
        ("the pаssword = Tr0ub4dor&3xq …", "a password", (1, 16)),   # a Cyrillic "а"
        ("why a 401 for …ｇｈｐ＿" + token, "a GitHub token", (1, 16)),
    ]:
        found = find_secret(text)
        assert found is not None and (found.detail, (found.line, found.column)) == (label, where), (text, found)
        clean = redact_secrets(text)
        assert "[redacted: " in clean and "Sunfl0wer" not in clean and "Tr0ub4dor" not in clean and token not in clean
    # look-alike characters in prose stay prose
    for text in ["Как сбросить пароль пользователя в Django admin?", "ＡＰＩキーの管理方法を教えてください。",
                 "σ(z)_i = e^{z_i} / Σ_j e^{z_j}, with α = 0.5"]:
        assert find_secret(text) is None, text


def test_a_refusal_names_what_and_where_but_not_the_value():
    from inference_magics.errors import PrivacyError
    from inference_magics.routing import decide
    from inference_magics.settings import Settings

    with pytest.raises(PrivacyError) as err:
        decide("hello\nAPI: sk-ant-api03-Qx7Lm2Np9Rt4Vw8Zb1Cd5Fg3Hj6", Settings(), model="claude-haiku-4.5")
    assert "line 2, column 6" in err.value.message and "Qx7Lm2" not in err.value.message
    with pytest.raises(PrivacyError) as err:
        decide("notes\n\nthis is Vertraulich", Settings(), model="claude-haiku-4.5")
    assert "line 3, column 9" in err.value.message


# --- redaction ------------------------------------------------------------------------------------------
def test_redaction_names_what_it_removed_and_keeps_the_rest():
    text = "user ada, password: 'velvet thunder quietly eats' and token ghp_Ab3De6Gh9Jk2Mn5Pq8St1Vw4Yz7Bc0Ef3Hi6 ok"
    clean = redact_secrets(text)
    assert "velvet" not in clean and "thunder" not in clean and "ghp_" not in clean
    assert clean.startswith("user ada, password: '[redacted: a password]' and token [redacted: a GitHub token] ok")


def test_a_private_key_goes_whole_even_when_repeated_or_cut_off():
    block = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA3Xk9Lq2Wm7Rt4Vb8\nNc1Zp6Hy3Jd5\n-----END RSA PRIVATE KEY-----"
    assert redact_secrets(f"a\n{block}\nb\n{block}\nc") == "a\n[redacted: a private key]\nb\n[redacted: a private key]\nc"
    assert redact_secrets("-----BEGIN PRIVATE KEY-----\nMIIEvgIBADANBgkqhkiG9w0BAQEFAASC") == "[redacted: a private key]"


# --- each shape the held-out corpus of round 7 found missing: found, and gone whole from the redaction ---------
SESSION_TOKEN = "IQoJb3JpZ2luX2VjE" + "Qm9yZWFsaXNCb3JlYWxpcw" * 14  # longer than the 256 characters first looked at
PEM_BASE64 = base64.b64encode(("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA" + "3Xk9Lq2Wm7Rt4Vb8Nc1Zp6Hy3Jd5Gs0F" * 50
                               + "\n-----END RSA PRIVATE KEY-----\n").encode()).decode()  # 2 kB, as a 2048-bit key
REDACTED_WHOLE = [
    # passwords after a label in Polish, Turkish, Swedish, Czech, Danish/Norwegian, Finnish, Hungarian, Greek,
    # Arabic, Hebrew, Hindi, Vietnamese, Indonesian; Russian without a copula
    ("Hasło do serwera to Harbor!21vbaF", "Harbor!21vbaF"),
    ("Veritabanı şifrem Quill&96nahA, neden bağlanamıyorum?", "Quill&96nahA"),
    ("Lösenordet till routern är Ember&71vyeJ", "Ember&71vyeJ"),
    ("Heslo k databázi: Harbor%62gssY", "Harbor%62gssY"),
    ("Passordet er Tidal#81xgaF", "Tidal#81xgaF"),
    ("Adgangskode: Quill$20mdmP", "Quill$20mdmP"),
    ("Salasana on Nova*49ahqF", "Nova*49ahqF"),
    ("A jelszó: Falcon#90kijN", "Falcon#90kijN"),
    ("Ο κωδικός πρόσβασης είναι Nova$29jvoE", "Nova$29jvoE"),
    ("كلمة المرور: Nova*54pkkY", "Nova*54pkkY"),
    ("הסיסמה היא Lumen*52wjeC", "Lumen*52wjeC"),
    ("मेरा पासवर्ड Falcon*80sozS है", "Falcon*80sozS"),
    ("Mật khẩu wifi là Nova*37gngR", "Nova*37gngR"),
    ("Kata sandi server: Falcon%52fbwI", "Falcon%52fbwI"),
    ("Мой пароль от почты Ember$44mpzZ", "Ember$44mpzZ"),
    # a column of secrets: a DataFrame printout, CSV, a Markdown table
    ("      username      password        last_login\n0        alice  Ember$46yjaV  2024-10-01\n"
     "1          bob  Ember$75gzeL  2024-09-12", "Ember$75gzeL"),
    ("email,password,plan\nana@acme.io,Nova$25hvvT,pro\nbo@acme.io,Lumen%55abhY,free", "Lumen%55abhY"),
    ("| host | user | password |\n|---|---|---|\n| db1 | root | Quill!55kqdZ |", "Quill!55kqdZ"),
    ("   service         api_key\n0  openai  Qx7Lm2Np9Rt4Vw8Zb1Cd5Fg3Hj6Kp0Sa", "Qx7Lm2Np9Rt4Vw8Zb1Cd5Fg3Hj6Kp0Sa"),
    # a setting named in one XML attribute and given in the next, or as the element's text
    ('<add key="DbPassword" value="Lumen%85tmlQ" />', "Lumen%85tmlQ"),
    ('<property name="password" value="Ember$66nokX"/>', "Ember$66nokX"),
    ('<entry key="db.password">Cobalt%693ws</entry>', "Cobalt%693ws"),
    # PowerShell, redis.conf, redis-cli, a CLI's login, cloud CLIs' key flags
    ('$c = New-Object PSCredential("ACME\\svc", (ConvertTo-SecureString "Nova%98epsX" -AsPlainText -Force))',
     "Nova%98epsX"),
    ("requirepass Ember#66rmzW\nmaxmemory 2gb", "Ember#66rmzW"),
    ("redis-cli -h cache.acme.io -a niPk3oeKrrmZqGrSC8NJ ping", "niPk3oeKrrmZqGrSC8NJ"),
    ("wandb login 7c1e4f9a2b8d3c6e5f0a1b2c3d4e5f6a7b8c9d0e", "7c1e4f9a2b8d3c6e5f0a1b2c3d4e5f6a7b8c9d0e"),
    ("az storage blob upload --account-name acme --account-key " + "Qm9yZWFsaXNCb3JlYWxpcw" * 4 + "== -c raw",
     "Qm9yZWFsaXNCb3JlYWxpcw" * 4),
    # an SDK client built from an id and a secret
    ('client = Client("AC92edf53e54f4c299f1b462b545c16bb5", "684cc2c4f6efff823ac66089bd0b98d9")',
     "684cc2c4f6efff823ac66089bd0b98d9"),
    ('var c = new CosmosClient("https://acme.documents.azure.com:443/", "9zRcI99nOfnh6B+0+zPY5VubSGUYYWRO==");',
     "9zRcI99nOfnh6B+0+zPY5VubSGUYYWRO=="),
    # a user and a password in prose
    ("creds for the NAS: admin / Ember!28ffnP", "Ember!28ffnP"),
    ("You can log in as admin with Tidal$12ufsJ on the staging box.", "Tidal$12ufsJ"),
    # URLs: an "@" in the password, a templated host, `appid=`
    ("DATABASE_URL=postgres://app:p@ss4Lfr96@localhost:5432/app", "p@ss4Lfr96"),
    ('dsn = f"postgresql://etl:Sprout&759ik@{host}:5432/dw"', "Sprout&759ik"),
    ("curl 'https://api.acme.io/v3/forecast?lat=52.5&appid=M8NGU5Lc31HKAYZeSxjPpBWRUZ8vA3Om'",
     "M8NGU5Lc31HKAYZeSxjPpBWRUZ8vA3Om"),
    # a personal access token under its short name; Slack's rotating tokens
    ("AZURE_DEVOPS_EXT_PAT=fm25ywepna4so03pt31crz6bagkub0nvyknv7cs0odflufm6p5dk",
     "fm25ywepna4so03pt31crz6bagkub0nvyknv7cs0odflufm6p5dk"),
    ("Slack gave me xoxe.xoxp-1-47lnLysZEK68EkEG93ioFLDGi0RXUxtbEdYt4dauhIaiPExfyDKi4VEVHw0Pp and a refresh token",
     "xoxe.xoxp-1-47lnLysZEK68EkEG93ioFLDGi0RXUxtbEdYt4dauhIaiPExfyDKi4VEVHw0Pp"),
    # a value longer than 256 characters after its label, quoted or not
    ('{"SessionToken": "' + SESSION_TOKEN + '", "Expiration": "2025-06-01T12:00:00Z"}', SESSION_TOKEN),
    ("AWS_SESSION_TOKEN=" + SESSION_TOKEN + "\nAWS_REGION=eu-west-1", SESSION_TOKEN),
    # a PEM private key, base64-encoded (Kubernetes `tls.key:`, kubeconfig `client-key-data:`)
    ("data:\n  tls.key: " + PEM_BASE64, PEM_BASE64),
]


@pytest.mark.parametrize("text, secret", REDACTED_WHOLE)
def test_each_new_shape_is_found_and_redacted_whole(text, secret):
    assert find_secret(text) is not None, text
    clean = redact_secrets(text)
    left = [secret[i:i + 8] for i in range(len(secret) - 7) if secret[i:i + 8] in clean]
    assert not left, (clean, left)
    assert redact_secrets(clean) == clean


@pytest.mark.parametrize("text", [
    # a key's header named in prose or code, with no key after it
    "What's the difference between BEGIN RSA PRIVATE KEY and BEGIN PRIVATE KEY headers in PEM files?",
    'if data.startswith(b"-----BEGIN RSA PRIVATE KEY-----"):\n    key = load_rsa(data)',
    # tables without a secret column, or with only hashes or placeholders in it
    "     model  tokens_in  tokens_out  latency_ms\n0  llama3       1024         256       812.4",
    "| field | type | description |\n|---|---|---|\n| password | string | the user's password (hashed on save) |",
    "email,password,plan\nana@acme.io,********,pro",
    # words after the new languages' labels, placeholders, names, patterns
    "Hasło jest za krótkie, użyj co najmniej 12 znaków.", "Lösenordet är fel, försök igen.", "şifre: <şifreniz>",
    '<add key="LogLevel" value="Information" />\n<add key="PasswordMinLength" value="12" />',
    'client = Client("https://api.acme.io", "default-workspace")', "log in as root with sudo and restart nginx",
    "# requirepass foobared  (uncomment to require a password)", "az login --use-device-code",
    '_UNRESERVED_PAT = r"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._\\-~"',
    'x = h.lower() in ("api-key", "x-api-key", "proxy-authorization")',
    "https://api.openweathermap.org/data/2.5/weather?q=Berlin&appid={API_KEY}",
])
def test_lookalikes_of_the_new_shapes_are_not_secrets(text):
    assert find_secret(text) is None, find_secret(text)
    assert redact_secrets(text) == text


def test_a_long_labelled_value_is_read_to_its_end_but_a_run_of_labels_stays_linear():
    """A value that is one token for all of the first 256 characters runs on (bounded); labels inside it are
    not looked at again, so `key=key=key=…` costs one look per 4 kB (the hostile inputs above finish)."""
    value = base64.b64encode(bytes(range(256)) * 16).decode()  # 5.5 kB of one token
    spans = secret_scan.scan("token=" + value)
    assert spans and max(s.end for s in spans) == len("token=") + 256 + 4096


# --- linear, and interruptible ----------------------------------------------------------------------------
HOSTILE_UNITS = ["a", "a=", "eyJ", "xoxb-1-", "cos_key" + " " * 200, "sk-ant-", " ", "Ab3+/", "1", "1 ", "key=", "password: ", "://a:", "1.", "deadbeef", "pass", "'",
                 "-----BEGIN PRIVATE KEY-----\n", "AKIA", "eyJ.", "sk-", "\u200b", "конфиденц ", "機", "do not ",
                 "Authorization: ", "Zx9/", "a_b-", "@", ":", "ｐａｓｓｗｏｒｄ：", "pаss= ", "ｇｈｐ＿", "…", "\u200bkey=",
                 "password,a\n", "| password | b |\n", "x  password\n", "key=\"a.key\"", "Hasło to ", "BEGIN RSA PRIVATE KEY "]


@pytest.mark.parametrize("unit", HOSTILE_UNITS)
def test_hostile_inputs_finish(unit):
    """No timing here (bench/privacy.py measures the scaling); a quadratic pattern would run for minutes
    on these 200 kB inputs and trip the suite's timeout."""
    text = (unit * (200_000 // len(unit) + 1))[:200_000]
    classify(text)
    redact_secrets(text)


def test_every_rule_is_anchored_so_no_pattern_runs_over_the_whole_text():
    plan = secret_scan.plan()
    assert plan.everywhere == [], [r.label for r in plan.everywhere]
    # and each pattern we took from detect-secrets is in the plan
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    taken = {r.pattern.pattern for r in secret_scan.rules()}
    for plugin in get_mapping_from_secret_type_to_class().values():
        if plugin.__name__ not in secret_scan._LIBRARY_SKIPPED and hasattr(plugin, "denylist"):
            assert {p.pattern for p in plugin.denylist} <= taken, plugin.__name__


def test_detect_secrets_is_imported_at_the_first_check_not_at_load():
    code = ("import sys, inference_magics, inference_magics.notebook.magics, inference_magics.privacy as p\n"
            "assert 'detect_secrets' not in sys.modules and 'ahocorasick_rs' not in sys.modules\n"
            "assert p.classify('DB_PASS=Quartz-Lamp-81')\n"
            "assert 'detect_secrets' in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
