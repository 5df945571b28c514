"""The JWK set: the public half of the signing key, with an RFC 7638 thumbprint as its key id."""

from __future__ import annotations

import jwt
import pytest
from jwt.algorithms import RSAAlgorithm

from users import keys
from users.tests.factories import UserFactory, login

pytestmark = pytest.mark.django_db


def test_jwks_serves_the_key_that_verifies_issued_tokens(api, settings):
    user = UserFactory()
    access = login(api, email=user.email).json()["access"]

    response = api.get("/.well-known/jwks.json")

    assert response.status_code == 200
    assert response["Cache-Control"] == "public, max-age=300"
    (jwk,) = response.json()["keys"]
    assert (jwk["kty"], jwk["use"], jwk["alg"], jwk["e"]) == ("RSA", "sig", "RS256", "AQAB")
    assert jwt.get_unverified_header(access)["kid"] == jwk["kid"]
    claims = jwt.decode(access, RSAAlgorithm.from_jwk(jwk), algorithms=["RS256"], audience=settings.JWT_AUDIENCE)
    assert claims["sub"] == str(user.id)
    assert "d" not in jwk and "p" not in jwk  # never the private parts


def test_the_key_id_is_the_rfc7638_thumbprint():
    # The example key of RFC 7638, section 3.1, and the thumbprint the RFC gives for it.
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMs"
        "tn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5"
        "hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )
    numbers = RSAAlgorithm.from_jwk({"kty": "RSA", "e": "AQAB", "n": n}).public_numbers()

    jwk = keys._jwk_of((numbers.e, numbers.n))

    assert jwk["n"] == n
    assert jwk["kid"] == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
