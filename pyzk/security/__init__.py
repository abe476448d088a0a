"""Security: TLS settings and contexts, SASL (DIGEST-MD5), x509 ids, quorum auth, redaction."""
