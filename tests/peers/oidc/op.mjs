// A real OpenID provider for the SSO tests: npm oidc-provider 9.13.3 (panva), bound to 127.0.0.1.
// One confidential client (client_secret_basic) whose redirect URIs come from the environment, PKCE required,
// the development login + consent pages (any login and password are accepted; the login becomes the subject),
// and accounts whose email / name / groups come from OP_ACCOUNTS (JSON: {"login": {"email", "name", "groups"}}).
// Usage: OP_PORT=... OP_CLIENT_ID=... OP_CLIENT_SECRET=... OP_REDIRECT_URIS="uri1 uri2" [OP_ACCOUNTS=json] node op.mjs
import Provider from 'oidc-provider';

const env = process.env;
const port = Number(env.OP_PORT);
const accounts = JSON.parse(env.OP_ACCOUNTS || '{}');

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: env.OP_CLIENT_ID,
    client_secret: env.OP_CLIENT_SECRET,
    redirect_uris: env.OP_REDIRECT_URIS.split(' '),
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { required: () => true },
  scopes: ['openid', 'email', 'profile', 'groups'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    const account = accounts[id] || {};
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          email: account.email || id,
          email_verified: true,
          name: account.name || id,
          groups: account.groups || [],
        };
      },
    };
  },
});

provider.listen(port, '127.0.0.1', () => console.log(`oidc-provider listening on http://127.0.0.1:${port}`));
