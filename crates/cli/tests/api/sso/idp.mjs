// A real OpenID Connect provider for Tessera's tests: the npm package `oidc-provider`, with
// one static confidential client and a few test accounts. Its development interactions
// accept any password for a known account (the login is the account id).
//
// Usage: node idp.mjs PORT REDIRECT_URI
// Prints "listening" once it accepts connections.
//
// Accounts (login → claims):
//   ada       ada@acme.test, verified          (a user Tessera may know)
//   grace     grace@acme.test, verified        (someone new)
//   mallory   mallory@acme.test, NOT verified
//   eve       eve@elsewhere.test, verified     (a domain the team does not allow)
//   audience  audience@acme.test, verified; its ID token is re-signed for another audience
import Provider from 'oidc-provider';
import { SignJWT, decodeJwt, exportJWK, generateKeyPair, importJWK } from 'jose';

const [port, redirectUri] = process.argv.slice(2);
const issuer = `http://localhost:${port}`;

const accounts = {
  ada: { email: 'ada@acme.test', email_verified: true, name: 'Ada Lovelace' },
  grace: { email: 'grace@acme.test', email_verified: true, name: 'Grace Hopper' },
  mallory: { email: 'mallory@acme.test', email_verified: false, name: 'Mallory' },
  eve: { email: 'eve@elsewhere.test', email_verified: true, name: 'Eve' },
  audience: { email: 'audience@acme.test', email_verified: true, name: 'Aud' },
};

const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const jwk = { ...(await exportJWK(privateKey)), kid: 'test-key', alg: 'RS256', use: 'sig' };
const signingKey = await importJWK(jwk, 'RS256');

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'tessera',
      client_secret: 'tessera-test-secret',
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  jwks: { keys: [jwk] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  // The ID token carries the claims (as Keycloak, Okta, Google and Entra ID do).
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['tessera-test-cookie-key'] },
  async findAccount(ctx, id) {
    const claims = accounts[id];
    if (!claims) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...claims }) };
  },
  // A first-party client: no consent screen.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email profile');
    await grant.save();
    return grant;
  },
});

// The "audience" account's ID token is re-signed with the provider's own key for another
// client: everything checks but `aud`.
provider.use(async (ctx, next) => {
  await next();
  if (ctx.path !== '/token' || ctx.status !== 200 || !ctx.body?.id_token) return;
  const claims = decodeJwt(ctx.body.id_token);
  if (claims.sub !== 'audience') return;
  claims.aud = 'another-app';
  ctx.body = {
    ...ctx.body,
    id_token: await new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: 'test-key', typ: 'JWT' })
      .sign(signingKey),
  };
});

provider.listen(Number(port), () => console.log('listening'));
