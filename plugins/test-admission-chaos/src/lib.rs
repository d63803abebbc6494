//! An admission plugin that misbehaves on request, for the host's tests.
//!
//! The configuration's `mode` chooses the behaviour:
//!
//! | mode | behaviour |
//! |---|---|
//! | `allow` (default) | allows everything |
//! | `deny` | denies with `reason` (default `chaos: denied`) and `code` (default 403) |
//! | `trap` | panics, which traps the call |
//! | `loop` | never returns |
//! | `memory-bomb` | allocates and touches memory until allocation fails |
//! | `malformed` | allows with a patch that is not JSON |
//! | `init-error` | refuses to initialise: `chaos: init refused` |
//! | `annotate` | patches annotation `chaos.hortator.io/mark` = `value` onto the object |
//! | `probe-sandbox` | allows, with one warning per probe of the sandbox: `fs: …`, `env: …`, `clock: …`, `net: …` |
//! | `lookup` | looks up the request's namespace; denies with the error, else allows with a warning `namespace found` or `namespace missing` |

use std::hint::black_box;

use hortator_sdk::admission::{Admission, ObjectError, PatchOp, Request, Response, json_pointer};
use hortator_sdk::serde_json::{Map, Value};
use hortator_sdk::{GroupVersionResource, cluster};

/// The annotation `annotate` sets.
const MARK: &str = "chaos.hortator.io/mark";

enum Chaos {
    Allow,
    Deny { reason: String, code: u16 },
    Trap,
    Loop,
    MemoryBomb,
    Malformed,
    Annotate { value: String },
    Lookup,
    ProbeSandbox,
}

impl Admission for Chaos {
    fn init(config: Value) -> Result<Self, String> {
        let text = |key: &str, default: &str| {
            config
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or(default)
                .to_owned()
        };
        Ok(match text("mode", "allow").as_str() {
            "allow" => Chaos::Allow,
            "deny" => Chaos::Deny {
                reason: text("reason", "chaos: denied"),
                code: match config.get("code") {
                    None => 403,
                    Some(code) => code
                        .as_u64()
                        .and_then(|code| u16::try_from(code).ok())
                        .ok_or_else(|| format!("chaos: code must be an HTTP status, not {code}"))?,
                },
            },
            "trap" => Chaos::Trap,
            "loop" => Chaos::Loop,
            "memory-bomb" => Chaos::MemoryBomb,
            "malformed" => Chaos::Malformed,
            "init-error" => return Err("chaos: init refused".into()),
            "annotate" => Chaos::Annotate {
                value: text("value", ""),
            },
            "lookup" => Chaos::Lookup,
            "probe-sandbox" => Chaos::ProbeSandbox,
            other => return Err(format!("chaos: unknown mode {other:?}")),
        })
    }

    fn admit(&self, request: &Request) -> Response {
        match self {
            Chaos::Allow => Response::allow(),
            Chaos::Deny { reason, code } => Response::deny(reason.as_str()).with_code(*code),
            Chaos::Trap => panic!("chaos: trap requested"),
            Chaos::Loop => spin(),
            Chaos::MemoryBomb => exhaust_memory(),
            Chaos::Malformed => Response::allow().with_raw_patch("this is not json"),
            Chaos::Annotate { value } => annotate(request, value),
            Chaos::Lookup => lookup(request),
            Chaos::ProbeSandbox => probe_sandbox(),
        }
    }
}

hortator_sdk::export_admission!(Chaos);

/// Tries what a plugin must not be able to do and reports each outcome.
fn probe_sandbox() -> Response {
    let fs = match std::fs::read_dir("/") {
        Ok(_) => "readable".to_owned(),
        Err(error) => format!("denied ({error})"),
    };
    let env = std::env::vars().count();
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_secs())
        .unwrap_or_default();
    let net = match std::net::TcpStream::connect("127.0.0.1:1") {
        Ok(_) => "connected".to_owned(),
        Err(error) => format!("denied ({error})"),
    };
    Response::allow()
        .warn(format!("fs: {fs}"))
        .warn(format!("env: {env} variables"))
        .warn(format!("clock: {clock}"))
        .warn(format!("net: {net}"))
}

/// Loops forever; `black_box` keeps the optimizer from proving anything
/// about the loop.
fn spin() -> ! {
    let mut counter = 0u64;
    loop {
        counter = black_box(counter).wrapping_add(1);
    }
}

/// Allocates 1 MiB blocks, writing every byte, until the allocator fails,
/// which aborts (traps) the call.
fn exhaust_memory() -> ! {
    const BLOCK: usize = 1 << 20;
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        blocks.push(black_box(vec![1u8; BLOCK]));
    }
}

fn annotate(request: &Request, value: &str) -> Response {
    let object: Value = match request.object() {
        Ok(object) => object,
        // Nothing to annotate on a delete.
        Err(ObjectError::Missing(_)) => return Response::allow(),
        Err(error) => return error.into(),
    };
    let patch = if object["metadata"]["annotations"].is_object() {
        PatchOp::add(json_pointer(["metadata", "annotations", MARK]), value)
    } else {
        let mut annotations = Map::new();
        annotations.insert(MARK.to_owned(), value.into());
        PatchOp::add(json_pointer(["metadata", "annotations"]), annotations)
    };
    Response::allow().with_patch(vec![patch])
}

fn lookup(request: &Request) -> Response {
    let namespaces = GroupVersionResource::new("", "v1", "namespaces");
    match cluster::get::<Value>(&namespaces, "", &request.namespace) {
        Ok(Some(_)) => Response::allow().warn("namespace found"),
        Ok(None) => Response::allow().warn("namespace missing"),
        Err(error) => Response::deny(error.to_string()),
    }
}
