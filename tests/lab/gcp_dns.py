"""A Cloud DNS v1 stand-in (served by the GCP stand-in, ``tests/lab/gcp.py``) and the HTTPS proxy that lets the
google.cloud modules reach it.

Served, under ``/dns/v1/projects/{p}/``, with the real API's shapes:
- ``GET managedZones`` (``dnsName`` filter) -> ``dns#managedZonesListResponse`` / ``managedZones``;
  ``GET managedZones/{z}`` -> ``dns#managedZone``;
- ``GET managedZones/{z}/rrsets`` (``name``, and ``type`` only with ``name``: 400 otherwise) ->
  ``dns#resourceRecordSetsListResponse`` / ``rrsets``;
- ``POST managedZones/{z}/changes`` (``dns#change``: ``deletions`` applied, then ``additions``, atomically): a
  deletion must equal the record set it names (404 notFound when there is none, 412 conditionNotMet when its
  ttl or rrdatas differ), an addition must not exist after the deletions (409 alreadyExists), every name must
  be in the zone (400 invalid); answers the Change ``pending``, ``done`` after ``change_delay`` lab seconds;
  ``GET managedZones/{z}/changes/{id}``.
- ``POST /token``: an OAuth 2.0 token for whatever credentials ask (google-auth refreshes through it); not
  recorded as a write.
A new zone holds its SOA (serial 1) and NS record sets, as on GCP.

Not modelled: paging (every list is one page), ``changes.list``, zone creation/deletion over HTTP (the lab's
``create_managed_zone``), private zones and DNSSEC, routing policies, CNAME-with-other-records and
record-data syntax checks, IAM (every caller may do everything), quotas.

The google.cloud modules call ``https://dns.googleapis.com`` and ``https://oauth2.googleapis.com``, fixed in
their code. ``GoogleApisProxy`` is an HTTPS proxy (``HTTPS_PROXY``) that answers ``CONNECT`` to those two hosts
only (403 for any other: nothing leaves the lab), terminates TLS with a lab CA's certificate
(``REQUESTS_CA_BUNDLE``) and serves the requests with the GCP stand-in. ``environment()`` gives the variables
for a run, with an Application Default Credentials file of a fake user.
"""
from __future__ import annotations

import datetime
import json
import os
import socketserver
import ssl
import threading

from .standin_http import _Handler

GOOGLE_HOSTS = ("dns.googleapis.com", "oauth2.googleapis.com")


class DnsError(Exception):
    """Raised by CloudDns; the GCP stand-in renders it as its error body."""

    def __init__(self, status: int, message: str, reason: str):
        super().__init__(message)
        self.status, self.message, self.reason = status, message, reason


class CloudDns:
    """The Cloud DNS state and routes; ``GcpLab`` owns one, routes ``/dns/v1/`` and ``/token`` here and holds the lock."""

    def __init__(self, clock, timestamp, change_delay: float = 2.0):
        self.clock = clock
        self._timestamp = timestamp
        self.change_delay = float(change_delay)
        self.zones: dict = {}      # (project, zone name) -> dns#managedZone
        self.records: dict = {}    # (project, zone name) -> {(name, type): dns#resourceRecordSet}
        self.changes: dict = {}    # (project, zone name) -> [change, ...]; the id is the index
        self._ids = 7000

    # ------------------------------------------------------------------ Python API for the lab and tests
    def create_managed_zone(self, project: str, name: str, dns_name: str) -> dict:
        dns_name = dns_name if dns_name.endswith(".") else dns_name + "."
        self._ids += 1
        servers = ["ns-cloud-a%d.googledomains.com." % i for i in range(1, 5)]
        zone = {"kind": "dns#managedZone", "name": name, "dnsName": dns_name, "id": str(self._ids),
                "description": "", "nameServers": servers, "creationTime": self._timestamp(self.clock.now()),
                "visibility": "public"}
        self.zones[(project, name)] = zone
        self.records[(project, name)] = {
            (dns_name, "SOA"): self._rrset(dns_name, "SOA", 21600, [
                "%s cloud-dns-hostmaster.google.com. 1 21600 3600 259200 300" % servers[0]]),
            (dns_name, "NS"): self._rrset(dns_name, "NS", 21600, servers),
        }
        self.changes[(project, name)] = []
        return zone

    def record_sets(self, project: str, zone: str) -> list[dict]:
        return [dict(r) for _key, r in sorted(self.records[(project, zone)].items())]

    # ------------------------------------------------------------------ HTTP
    def handle(self, request) -> dict:
        if request.path == "/token":
            return {"access_token": "lab-access-token", "expires_in": 3599, "token_type": "Bearer",
                    "scope": "https://www.googleapis.com/auth/ndev.clouddns.readwrite"}
        parts = [p for p in request.path.split("/") if p]
        if parts[:3] != ["dns", "v1", "projects"] or len(parts) < 5 or parts[4] != "managedZones":
            raise DnsError(404, "The requested URL %s was not found on this server." % request.path, "notFound")
        project, rest = parts[3], parts[5:]
        if not rest and request.method == "GET":
            wanted = request.query.get("dnsName")
            zones = [dict(z) for (p, _n), z in sorted(self.zones.items())
                     if p == project and (not wanted or z["dnsName"] == wanted)]
            return {"kind": "dns#managedZonesListResponse", "managedZones": zones}
        if not rest:
            raise DnsError(405, "Method not allowed", "methodNotAllowed")
        zone = self.zones.get((project, rest[0]))
        if zone is None:
            raise DnsError(404, "The 'parameters.managedZone' resource named '%s' does not exist." % rest[0], "notFound")
        key, tail = (project, rest[0]), rest[1:]
        if not tail and request.method == "GET":
            return dict(zone)
        if tail == ["rrsets"] and request.method == "GET":
            return self._list_rrsets(key, request.query)
        if tail == ["changes"] and request.method == "POST":
            return self._change(key, zone, request.json(default={}))
        if len(tail) == 2 and tail[0] == "changes" and request.method == "GET":
            return self._render_change(key, tail[1])
        raise DnsError(404, "The requested URL %s was not found on this server." % request.path, "notFound")

    def _list_rrsets(self, key, query) -> dict:
        name, kind = query.get("name"), query.get("type")
        if kind and not name:
            raise DnsError(400, "Invalid value for 'parameters.type': a type filter needs a name filter.", "invalid")
        found = [dict(r) for (n, t), r in sorted(self.records[key].items())
                 if (not name or n == name) and (not kind or t == kind)]
        return {"kind": "dns#resourceRecordSetsListResponse", "rrsets": found}

    def _change(self, key, zone, body) -> dict:
        if not isinstance(body, dict) or (not body.get("additions") and not body.get("deletions")):
            raise DnsError(400, "The 'entity.change' resource has no additions or deletions.", "required")
        records = dict(self.records[key])
        for field in ("deletions", "additions"):
            for index, rrset in enumerate(body.get(field) or []):
                where = "entity.change.%s[%d]" % (field, index)
                name, kind = self._check_rrset(where, rrset, zone["dnsName"])
                current = records.get((name, kind))
                if field == "deletions":
                    if current is None:
                        raise DnsError(404, "The '%s' resource named '%s (%s)' does not exist." % (where, name, kind), "notFound")
                    if (int(rrset.get("ttl") or 0), list(rrset.get("rrdatas") or [])) != (current["ttl"], current["rrdatas"]):
                        raise DnsError(412, "Precondition not met for '%s'" % where, "conditionNotMet")
                    del records[(name, kind)]
                else:
                    if current is not None:
                        raise DnsError(409, "The resource '%s' named '%s (%s)' already exists" % (where, name, kind),
                                       "alreadyExists")
                    records[(name, kind)] = self._rrset(name, kind, int(rrset.get("ttl") or 0), list(rrset["rrdatas"]))
        self.records[key] = records
        change = {"kind": "dns#change", "id": str(len(self.changes[key]) + 1), "startTime": self._timestamp(self.clock.now()),
                  "additions": [dict(r) for r in body.get("additions") or []],
                  "deletions": [dict(r) for r in body.get("deletions") or []], "created": self.clock.now()}
        self.changes[key].append(change)
        return self._render(change)

    @staticmethod
    def _check_rrset(where, rrset, zone_dns_name):
        if not isinstance(rrset, dict) or not rrset.get("name") or not rrset.get("type"):
            raise DnsError(400, "The '%s' resource needs a name and a type." % where, "required")
        name = rrset["name"]
        if not name.endswith(".") or not (name == zone_dns_name or name.endswith("." + zone_dns_name)):
            raise DnsError(400, "The '%s' resource named '%s' must be within the zone '%s'." % (where, name, zone_dns_name),
                           "invalid")
        if not isinstance(rrset.get("rrdatas"), list) or not rrset["rrdatas"]:
            raise DnsError(400, "The '%s' resource named '%s' has no rrdatas." % (where, name), "required")
        return name, rrset["type"]

    def _render_change(self, key, change_id) -> dict:
        changes = self.changes[key]
        if not change_id.isdigit() or not 1 <= int(change_id) <= len(changes):
            raise DnsError(404, "The 'parameters.changeId' resource named '%s' does not exist." % change_id, "notFound")
        return self._render(changes[int(change_id) - 1])

    def _render(self, change) -> dict:
        rendered = {k: v for k, v in change.items() if k != "created"}
        rendered["status"] = "done" if self.clock.now() >= change["created"] + self.change_delay else "pending"
        return rendered

    @staticmethod
    def _rrset(name, kind, ttl, rrdatas) -> dict:
        return {"kind": "dns#resourceRecordSet", "name": name, "type": kind, "ttl": ttl, "rrdatas": list(rrdatas)}


def _tls_material(directory: str) -> dict:
    """A lab CA and a certificate for GOOGLE_HOSTS signed by it (EC P-256, one day): lab material only."""
    from cryptography import x509  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives import hashes, serialization  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives.asymmetric import ec  # pylint: disable=import-outside-toplevel
    from cryptography.x509.oid import NameOID  # pylint: disable=import-outside-toplevel

    os.makedirs(directory, mode=0o700, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)

    def _builder(subject, issuer, key):
        return (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)])).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=1)))

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (_builder("lab-googleapis-ca", "lab-googleapis-ca", ca_key)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    cert = (_builder(GOOGLE_HOSTS[0], "lab-googleapis-ca", key)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in GOOGLE_HOSTS]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = {name: os.path.join(directory, name + ".pem") for name in ("ca", "server", "server-key")}
    for name, data in (("ca", ca.public_bytes(serialization.Encoding.PEM)),
                       ("server", cert.public_bytes(serialization.Encoding.PEM)),
                       ("server-key", key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))):
        with open(os.open(paths[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
            handle.write(data)
    return paths


class _ProxyServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, standin_server, context):
        self.standin_server = standin_server
        self.context = context
        super().__init__(("127.0.0.1", 0), _ProxyHandler)

    def handle_error(self, request, client_address):
        """A client that hangs up mid-tunnel is not the lab's error."""


class _ProxyHandler(socketserver.StreamRequestHandler):
    def handle(self):
        line = self.rfile.readline(65537).decode("latin-1").split()
        while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
            pass
        host, _colon, port = (line[1] if len(line) == 3 else "").rpartition(":")
        if line[:1] != ["CONNECT"] or host not in GOOGLE_HOSTS or port != "443":
            self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self.wfile.flush()
        tunnel = self.server.context.wrap_socket(self.connection, server_side=True)
        # The GCP stand-in's own request handler, on the decrypted tunnel: same routes, log and faults.
        _Handler(tunnel, self.client_address, self.server.standin_server)


class GoogleApisProxy:
    """``start()`` serves the HTTPS proxy for a started GCP stand-in; ``environment()`` the variables of a run."""

    def __init__(self, gcp, directory: str):
        self.gcp = gcp
        self.directory = directory
        self.url = ""
        self._server = None
        self._thread = None

    def start(self) -> str:
        paths = _tls_material(os.path.join(self.directory, "tls"))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(paths["server"], paths["server-key"])
        self.ca_file = paths["ca"]
        self._server = _ProxyServer(self.gcp._server, context)  # pylint: disable=protected-access
        self._thread = threading.Thread(target=self._server.serve_forever, name="googleapis-proxy", daemon=True)
        self._thread.start()
        self.url = "http://127.0.0.1:%d" % self._server.server_address[1]
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def environment(self) -> dict:
        """HTTPS_PROXY, the CA, and Application Default Credentials of a fake user (auth_kind application)."""
        adc = os.path.join(self.directory, "application_default_credentials.json")
        with open(os.open(adc, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as handle:
            json.dump({"type": "authorized_user", "client_id": "lab-client.apps.googleusercontent.com",
                       "client_secret": "lab-client-secret", "refresh_token": "lab-refresh-token"}, handle)
        return {"HTTPS_PROXY": self.url, "https_proxy": self.url, "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost", "REQUESTS_CA_BUNDLE": self.ca_file,
                "GOOGLE_APPLICATION_CREDENTIALS": adc}
