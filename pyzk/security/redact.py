"""Secrets out of everything the server shows or logs.

Passwords, digests and keys are replaced by :data:`MASK` wherever the configuration is
shown: ``conf``/``envi`` words, the AdminServer's ``system_properties`` and
``initial_configuration``, and the start-up log. A key is secret by its name (see
:func:`pyzk.security.settings.is_secret_key`): ``ssl.keyStore.password``,
``ssl.quorum.trustStore.password``, ``DigestAuthenticationProvider.superDigest``,
``SASLAuthenticationProvider.superPassword`` ...; file locations are not secrets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pyzk.security.settings import is_secret_key

MASK = "******"

# key = value or key: value lines of a Java properties file (zoo.cfg).
_PROPERTY_LINE = re.compile(r"^(\s*)([^=:\s#!]+)(\s*[=:\s]\s*)(.*)$")


def _bare(key: str) -> str:
    return key.removeprefix("zookeeper.")


def properties(props: Mapping[str, str]) -> dict[str, str]:
    """A copy with the secret values masked."""
    return {k: (MASK if is_secret_key(_bare(k)) and v else v) for k, v in props.items()}


def config_text(text: str) -> str:
    """zoo.cfg as written, with the values of secret keys masked."""
    out = []
    for line in text.splitlines(keepends=True):
        m = _PROPERTY_LINE.match(line.rstrip("\r\n"))
        if m and is_secret_key(_bare(m[2])) and m[4]:
            ending = line[len(line.rstrip("\r\n")) :]
            line = f"{m[1]}{m[2]}{m[3]}{MASK}{ending}"
        out.append(line)
    return "".join(out)
