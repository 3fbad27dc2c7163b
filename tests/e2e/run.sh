#!/usr/bin/env bash
# End-to-end check of the controller and `serve --kubernetes` on a disposable kind/k3d
# cluster. See tests/e2e/README.md. Not run in CI.
set -euo pipefail
cd "$(dirname "$0")/../.."

ns=portcullis-e2e
image=${PORTCULLIS_IMAGE:-portcullis:dev}
context=$(kubectl config current-context)
if [[ "$context" != *kind* && "$context" != *k3d* && "${PORTCULLIS_E2E_CONTEXT_OK:-}" != 1 ]]; then
    echo "refusing to run against context '$context' (set PORTCULLIS_E2E_CONTEXT_OK=1 to override)" >&2
    exit 2
fi

step() { printf '\n== %s\n' "$*"; }
wait_ready() { kubectl -n "$ns" wait --for=condition=Ready --timeout=120s "$@"; }
secret_key() { kubectl -n "$ns" get secret "$1" -o "jsonpath={.data.$2}" | base64 -d; }

step "CRDs"
kubectl apply -f crds/portcullis.dev.yaml
kubectl wait --for=condition=Established --timeout=60s crd/oidcclients.portcullis.dev crd/oidcusers.portcullis.dev crd/signingkeys.portcullis.dev crd/identityconnectors.portcullis.dev
kubectl explain oidcclient.spec.redirectUris >/dev/null

step "install into $ns"
kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f -
sed "s|PORTCULLIS_IMAGE|$image|g" tests/e2e/manifests.yaml | kubectl -n "$ns" apply -f -
kubectl -n "$ns" rollout status deploy/redis --timeout=120s
kubectl -n "$ns" rollout status deploy/portcullis-controller --timeout=120s

step "resources"
hash=$(printf 'e2e-password' | kubectl -n "$ns" exec deploy/portcullis-controller -- portcullis hash-password)
kubectl -n "$ns" create secret generic alice-password --from-literal=hash="$hash" --dry-run=client -o yaml | kubectl -n "$ns" apply -f -
kubectl -n "$ns" apply -f - <<'YAML'
apiVersion: portcullis.dev/v1alpha1
kind: SigningKey
metadata: { name: main }
spec: { algorithm: ES256, rotationPeriod: 720h }
---
apiVersion: portcullis.dev/v1alpha1
kind: OidcUser
metadata: { name: alice }
spec: { username: alice, email: alice@example.com, passwordSecretRef: { name: alice-password, key: hash } }
---
apiVersion: portcullis.dev/v1alpha1
kind: OidcClient
metadata: { name: e2e-machine }
spec: { grantTypes: [client_credentials], scopes: [api] }
YAML
wait_ready signingkey/main oidcuser/alice oidcclient/e2e-machine
kubectl -n "$ns" rollout status deploy/portcullis --timeout=120s

step "client_credentials through the provider"
kubectl -n "$ns" port-forward svc/portcullis 18080:8080 >/dev/null 2>&1 &
forward=$!
trap 'kill $forward 2>/dev/null || true' EXIT
sleep 2
id=$(secret_key e2e-machine-credentials clientId)
secret=$(secret_key e2e-machine-credentials clientSecret)
token_kid() {
    curl -fsS -u "$id:$secret" -d grant_type=client_credentials http://127.0.0.1:18080/token |
        python3 -c 'import sys,json,base64; t=json.load(sys.stdin)["access_token"].split(".")[0]; print(json.loads(base64.urlsafe_b64decode(t+"=="))["kid"])'
}
kid=$(token_kid)
curl -fsS http://127.0.0.1:18080/jwks | grep -q "\"$kid\""
echo "token signed by $kid, which the JWKS publishes"

step "rotation on demand (waits for the publish delay)"
kubectl -n "$ns" annotate signingkey/main portcullis.dev/rotate="$(date +%s)" --overwrite
for _ in $(seq 1 90); do
    new=$(token_kid)
    [ "$new" != "$kid" ] && break
    sleep 5
done
[ "$new" != "$kid" ] || { echo "the provider did not pick up the rotated key" >&2; exit 1; }
echo "now signed by $new, no restart"

step "delete → cleanup"
kubectl -n "$ns" delete oidcclient/e2e-machine --wait=true --timeout=60s
! kubectl -n "$ns" get secret e2e-machine-credentials >/dev/null 2>&1 || sleep 5
! kubectl -n "$ns" get secret e2e-machine-credentials >/dev/null 2>&1
code=$(curl -s -o /dev/null -w '%{http_code}' -u "$id:$secret" -d grant_type=client_credentials http://127.0.0.1:18080/token)
[ "$code" = 401 ] || { echo "deleted client still gets tokens ($code)" >&2; exit 1; }

step "passed"
