// Binance's request security at the gateway (njs; infra/gateway.py renders the locations that call it).
//
// A SIGNED /api/v3 request (or an API-key-only one) is checked before it reaches the service that owns its path:
// the X-MBX-APIKEY header, the raw query string and the raw form body go to user_svc (the only holder of the
// secrets, /internal/binance/check), which verifies the key, the HMAC-SHA256 signature, timestamp and recvWindow.
// Refused: the client gets user_svc's Binance answer ({"code": -2015, "msg": ...}) and the service never sees the
// request. Accepted: user_svc's short-lived access token goes on as `Authorization: Bearer` to the service,
// through the named location @binance_<service> (the body nginx already read goes with it), so every service
// stays a stateless JWT verifier. nginx reads no body into a file for these locations (client_body_buffer_size
// equals their client_max_body_size): r.requestText is the whole body.
//
// Variables the location sets: $binance_service (whose @binance_<service> forwards), $binance_signed ("1": SIGNED,
// "0": API key only). Set here: $binance_token (js_var), for the named location.

const UNAVAILABLE = JSON.stringify({code: -1001, msg: "Internal error; unable to process your request. Please try again."});

function refuse(r, status, body) {
    r.headersOut["Content-Type"] = "application/json";
    r.return(status, body);
}

function parse(text) {
    try {
        const value = JSON.parse(text || "");
        return value !== null && typeof value === "object" ? value : null;
    } catch (e) {
        return null;
    }
}

async function check(r) {
    const question = JSON.stringify({
        api_key: r.headersIn["X-MBX-APIKEY"] || "",
        query: r.variables.args || "",
        body: r.requestText || "",
        signed: r.variables.binance_signed !== "0",
    });
    let reply;
    try {
        reply = await r.subrequest("/_binance/check", {method: "POST", body: question});
    } catch (e) {
        r.error(`binance check failed: ${e}`);
        refuse(r, 503, UNAVAILABLE);
        return;
    }
    if (reply.status !== 200) {
        // user_svc's refusal as it stands; a gateway or server error in Binance's shape.
        const answer = parse(reply.responseText);
        const binance = reply.status < 500 && answer && typeof answer.code === "number";
        refuse(r, reply.status < 500 ? reply.status : 503, binance ? reply.responseText : UNAVAILABLE);
        return;
    }
    const token = (parse(reply.responseText) || {}).token;
    if (typeof token !== "string" || !/^[A-Za-z0-9_\-.]+$/.test(token)) {
        r.error("binance check answered 200 without a token");
        refuse(r, 503, UNAVAILABLE);
        return;
    }
    r.variables.binance_token = token;
    r.internalRedirect(`@binance_${r.variables.binance_service}`);
}

export default {check};
