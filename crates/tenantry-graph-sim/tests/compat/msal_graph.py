"""Microsoft's own SDKs against the simulator over TLS: MSAL for tokens, the Graph SDK
(msgraph-sdk) for /organization, paging through /users and a 403. Run by
tests/sdk_compat.rs with SIM_URL, SIM_CA (the simulator's CA, also in REQUESTS_CA_BUNDLE
and SSL_CERT_FILE), HEALTHY and BARE (JSON credentials of two tenants). Prints one JSON
object with what it saw; any exception fails the run."""

import asyncio
import json
import os
import ssl
import time

import httpx
import msal
from azure.core.credentials import AccessToken
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph_core import GraphClientFactory

BASE = os.environ["SIM_URL"]
CA = os.environ["SIM_CA"]
HEALTHY = json.loads(os.environ["HEALTHY"])
BARE = json.loads(os.environ["BARE"])
SCOPES = ["https://graph.microsoft.com/.default"]


def token(tenant, secret):
    app = msal.ConfidentialClientApplication(
        tenant["client_id"],
        client_credential=secret,
        authority=f"{BASE}/{tenant['tenant_id']}",
        validate_authority=False,
        instance_discovery=False,
    )
    return app.acquire_token_for_client(scopes=SCOPES)


class StaticCredential:
    """An AsyncTokenCredential handing the Graph SDK the token MSAL obtained."""

    def __init__(self, access_token):
        self.access_token = access_token

    async def get_token(self, *scopes, **kwargs):
        return AccessToken(self.access_token, int(time.time()) + 3000)

    async def close(self):
        pass

    async def __aenter__(self):
        return self

    async def __aexit__(self, *args):
        pass


def graph(access_token):
    auth = AzureIdentityAuthenticationProvider(
        StaticCredential(access_token), allowed_hosts=["localhost"]
    )
    http = httpx.AsyncClient(
        verify=ssl.create_default_context(cafile=CA), base_url=f"{BASE}/v1.0"
    )
    adapter = GraphRequestAdapter(
        auth, client=GraphClientFactory.create_with_default_middleware(client=http)
    )
    adapter.base_url = f"{BASE}/v1.0"
    return GraphServiceClient(request_adapter=adapter)


async def main():
    result = {}
    good = token(HEALTHY, HEALTHY["client_secret"])
    assert "access_token" in good, good
    result["token_type"] = good.get("token_type")
    bad = token(HEALTHY, "not-the-secret")
    result["bad_error"] = bad.get("error")
    result["bad_error_codes"] = bad.get("error_codes")

    client = graph(good["access_token"])
    organization = await client.organization.get()
    result["organization"] = [o.display_name for o in organization.value]
    result["organization_id"] = organization.value[0].id

    page = await client.users.get()
    pages, users = 1, [u.user_principal_name for u in page.value]
    while page.odata_next_link:
        page = await client.users.with_url(page.odata_next_link).get()
        pages += 1
        users.extend(u.user_principal_name for u in page.value)
    result["pages"] = pages
    result["users"] = len(users)
    result["distinct_users"] = len(set(users))

    bare = token(BARE, BARE["client_secret"])
    try:
        await graph(bare["access_token"]).users.get()
        result["denied_code"] = None
    except ODataError as error:
        result["denied_status"] = error.response_status_code
        result["denied_code"] = error.error.code if error.error else None
    print(json.dumps(result))


asyncio.run(main())
