//! The CPU features that decide which graph variant pays off, read from /proc/cpuinfo so a DBA
//! sees them in ettin_info() (and the benchmark records them) without reading it by hand.
//!
//! Why they matter: ONNX Runtime's int8 matmuls (MLAS) multiply u8 activations by s8 weights.
//! With AVX512-VNNI or AVX-VNNI one instruction does it with 32-bit accumulation; with AVX2 only,
//! pairs of products are summed in 16 bits first and saturate for full-range weights, which is
//! why int8 weights must be 7-bit (reduce_range) there. BF16 and AMX are what torch uses for
//! sentence-transformers in bf16.

use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CpuFeatures {
    pub model: String,
    pub avx2: bool,
    pub avx512f: bool,
    pub avx512_vnni: bool,
    pub avx_vnni: bool,
    pub avx512_bf16: bool,
    pub amx_int8: bool,
    pub amx_bf16: bool,
}

impl CpuFeatures {
    /// This machine's, from /proc/cpuinfo (all false where it cannot be read).
    pub fn detect() -> Self {
        std::fs::read_to_string("/proc/cpuinfo")
            .map(|text| Self::parse(&text))
            .unwrap_or_default()
    }

    /// The first processor's model name and flags in a /proc/cpuinfo text.
    pub fn parse(cpuinfo: &str) -> Self {
        let field = |name: &str| {
            cpuinfo
                .lines()
                .find(|l| l.split(':').next().map(str::trim) == Some(name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
                .unwrap_or_default()
        };
        let flags = field("flags");
        let has = |flag: &str| flags.split_whitespace().any(|f| f == flag);
        CpuFeatures {
            model: field("model name"),
            avx2: has("avx2"),
            avx512f: has("avx512f"),
            avx512_vnni: has("avx512_vnni"),
            avx_vnni: has("avx_vnni"),
            avx512_bf16: has("avx512_bf16"),
            amx_int8: has("amx_int8"),
            amx_bf16: has("amx_bf16"),
        }
    }

    /// Whether int8 matmuls accumulate in 32 bits (VNNI or AMX), so full-range int8 weights are
    /// exact and fast; without it use 7-bit (reduce_range) weights.
    pub fn int8_dot_product(&self) -> bool {
        self.avx512_vnni || self.avx_vnni || self.amx_int8
    }

    /// The int8 graph the export tool writes that suits this CPU.
    pub fn int8_advice(&self) -> &'static str {
        if self.int8_dot_product() {
            "VNNI/AMX: onnx/model_cls_int8_vnni.onnx (full-range int8, closest to fp32) or onnx/model_cls_int8.onnx (7-bit), equally fast"
        } else if self.avx2 {
            "no VNNI: onnx/model_cls_int8.onnx (7-bit weights); full-range int8 saturates here and is refused"
        } else {
            "no AVX2: int8 brings little here; keep fp32"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZEN4: &str = "processor\t: 0\nmodel name\t: AMD EPYC 9R14\nflags\t\t: fpu sse avx2 avx512f avx512bw avx512_vnni avx512_bf16 avx_vnni\n\nprocessor\t: 1\n";
    const ZEN2: &str =
        "processor\t: 0\nmodel name\t: AMD EPYC 7R32\nflags\t\t: fpu sse avx avx2 fma\n";

    #[test]
    fn flags_are_read_whole_words() {
        let f = CpuFeatures::parse(ZEN4);
        assert_eq!(f.model, "AMD EPYC 9R14");
        assert!(f.avx2 && f.avx512f && f.avx512_vnni && f.avx_vnni && f.avx512_bf16);
        assert!(!f.amx_int8 && !f.amx_bf16);
        assert!(f.int8_dot_product());
        let f = CpuFeatures::parse(ZEN2);
        assert!(f.avx2 && !f.avx512f && !f.avx512_vnni && !f.int8_dot_product());
        assert!(f.int8_advice().contains("7-bit"));
        assert_eq!(CpuFeatures::parse(""), CpuFeatures::default());
    }
}
