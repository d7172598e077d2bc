"""``corridor node token``: print an access token from the registry, for calls by hand.

An operator debugging a partner's node with curl, or fuzzing one with
schemathesis (README), needs the bearer token this node's own client would
send. The token is what the node could mint anyway with its key; it lives
at most ``token_ttl`` seconds (300 by default) and can be revoked at the
registry.
"""

from __future__ import annotations

import click

from corridor.console import err, fail
from node.exchange.agreements_cli import node_context, registry_of
from node.exchange.oauth_client import TokenError

__all__ = ["token"]


@click.command()
@click.argument("audience")
@click.option("--scope", default="node:read", show_default=True,
              help="Space-separated scopes (e.g. 'catalog:read agreements:read' at the "
                   "registry, 'agreement:fetch' with --agreement at a provider).")
@click.option("--agreement", default=None, help="The agreement an agreement:* token acts under.")
@click.pass_context
def token(ctx: click.Context, audience: str, scope: str, agreement: str | None) -> None:
    """Print an access token for AUDIENCE (a member id, or 'registry') on stdout.

    \b
    TOKEN=$(corridor node --dir DIR token cn-ntlnp)
    curl -H "Authorization: Bearer $TOKEN" https://cn.example.org/whoami
    """
    settings = node_context(ctx).settings
    try:
        issued = registry_of(settings).tokens.token(audience, scope, agreement=agreement)
    except TokenError as e:
        fail(f"the registry refused the token: {e}")
    click.echo(issued)
    err.print(f"[dim]A bearer token for {audience} ({scope}); anyone holding it can use it "
              "until it expires.[/]")
