//! Host bindings for every world of `hortator:plugin`, generated from `sdk/wit`.
//! Later worlds reuse the shared `types` interface of the first so that one
//! Rust type stands for one WIT type.
#![allow(missing_docs)]

pub(crate) mod admission {
    wasmtime::component::bindgen!({
        path: "../../sdk/wit",
        world: "admission",
        additional_derives: [PartialEq],
    });
}

pub(crate) mod scheduler {
    wasmtime::component::bindgen!({
        path: "../../sdk/wit",
        world: "scheduler",
        additional_derives: [PartialEq],
        with: {
            "hortator:plugin/types": super::admission::hortator::plugin::types,
        },
    });
}

pub(crate) mod build_strategy {
    wasmtime::component::bindgen!({
        path: "../../sdk/wit",
        world: "build-strategy",
        with: {
            "hortator:plugin/types": super::admission::hortator::plugin::types,
        },
    });
}

pub(crate) mod network_driver {
    wasmtime::component::bindgen!({
        path: "../../sdk/wit",
        world: "network-driver",
        with: {
            "hortator:plugin/types": super::admission::hortator::plugin::types,
        },
    });
}
