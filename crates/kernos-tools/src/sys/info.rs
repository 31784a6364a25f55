//! `sys.info`: what this machine is — OS, kernel, hostname, architecture, CPU, memory, and
//! whether it is a virtual machine or a container.

use std::collections::HashMap;
use std::ffi::CStr;

use kernos_core::{ColumnKind, Effect, EffectKind, Reversibility};
use serde_json::{Value, json};

use super::cpu::cores;
use super::memory::meminfo;
use super::system_read;
use super::uptime::uptime_secs;
use crate::args::NoArgs;
use crate::output::{Output, human_bytes, row};
use crate::registry::{Action, Meta};
use crate::undo::Recorder;
use crate::{Ctx, Result};

/// `KEY=value` pairs of os-release(5), quotes removed.
pub(crate) fn parse_os_release(s: &str) -> HashMap<String, String> {
    s.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            Some((k.trim().to_owned(), v.replace("\\\"", "\"")))
        })
        .collect()
}

/// The CPU model from /proc/cpuinfo (x86 `model name`; ARM and others name it differently).
pub(crate) fn parse_cpu_model(s: &str) -> Option<String> {
    for key in [
        "model name",
        "Model",
        "cpu model",
        "Hardware",
        "cpu",
        "Processor",
    ] {
        let found = s.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == key && !v.trim().is_empty()).then(|| v.trim().to_owned())
        });
        if found.is_some() {
            return found;
        }
    }
    None
}

/// uname(2): (sysname, nodename, release, version, machine).
fn uname() -> Option<[String; 5]> {
    // SAFETY: an all-zero utsname is a valid value of this plain C struct.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is valid for writes.
    if unsafe { libc::uname(&mut u) } != 0 {
        return None;
    }
    let s = |f: &[libc::c_char]| {
        // SAFETY: uname NUL-terminates every field within its array.
        unsafe { CStr::from_ptr(f.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    };
    Some([
        s(&u.sysname),
        s(&u.nodename),
        s(&u.release),
        s(&u.version),
        s(&u.machine),
    ])
}

/// The hypervisor's CPUID vendor signature (leaf 0x4000_0000), present only under one.
#[cfg(target_arch = "x86_64")]
fn cpuid_hypervisor() -> Option<&'static str> {
    // Leaf 1, ECX bit 31: "running under a hypervisor".
    let l1 = std::arch::x86_64::__cpuid(1);
    if l1.ecx & (1 << 31) == 0 {
        return None;
    }
    let r = std::arch::x86_64::__cpuid(0x4000_0000);
    let mut sig = Vec::with_capacity(12);
    for reg in [r.ebx, r.ecx, r.edx] {
        sig.extend_from_slice(&reg.to_le_bytes());
    }
    Some(match sig.as_slice() {
        b"KVMKVMKVM\0\0\0" => "kvm",
        b"Microsoft Hv" => "hyper-v",
        b"VMwareVMware" => "vmware",
        b"XenVMMXenVMM" => "xen",
        b"TCGTCGTCGTCG" => "qemu",
        b"VBoxVBoxVBox" => "virtualbox",
        b" lrpepyh  vr" => "parallels",
        b"bhyve bhyve " => "bhyve",
        b"ACRNACRNACRN" => "acrn",
        b"QNXQVMBSQG\0\0" => "qnx",
        _ => "unknown hypervisor",
    })
}

#[cfg(not(target_arch = "x86_64"))]
fn cpuid_hypervisor() -> Option<&'static str> {
    None
}

/// A hint of what this runs on: `kvm`, `docker container`, `kvm, docker container`, `none`.
fn virtualization(cpuinfo: &str) -> String {
    let mut hints: Vec<String> = Vec::new();
    let dmi = |f: &str| {
        std::fs::read_to_string(format!("/sys/class/dmi/id/{f}"))
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    };
    let vm = cpuid_hypervisor().map(str::to_owned).or_else(|| {
        let product = format!("{} {}", dmi("sys_vendor"), dmi("product_name")).to_lowercase();
        let known = [
            ("qemu", "qemu"),
            ("kvm", "kvm"),
            ("vmware", "vmware"),
            ("virtualbox", "virtualbox"),
            ("microsoft corporation virtual machine", "hyper-v"),
            ("amazon ec2", "amazon ec2"),
            ("google compute engine", "google compute engine"),
            ("xen", "xen"),
        ];
        known
            .iter()
            .find(|(k, _)| product.contains(k))
            .map(|(_, v)| (*v).to_owned())
            .or_else(|| {
                let xen = std::fs::read_to_string("/sys/hypervisor/type").unwrap_or_default();
                (!xen.trim().is_empty()).then(|| xen.trim().to_owned())
            })
            .or_else(|| {
                cpuinfo
                    .lines()
                    .any(|l| {
                        l.starts_with("flags") && l.split_whitespace().any(|f| f == "hypervisor")
                    })
                    .then(|| "virtual machine".to_owned())
            })
    });
    hints.extend(vm);
    let osrelease = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    if osrelease.to_lowercase().contains("microsoft") {
        hints.push("wsl".into());
    }
    let container = if std::path::Path::new("/.dockerenv").exists() {
        Some("docker")
    } else if std::path::Path::new("/run/.containerenv").exists() {
        Some("podman")
    } else {
        let cg = std::fs::read_to_string("/proc/1/cgroup").unwrap_or_default();
        ["docker", "kubepods", "lxc", "containerd"]
            .into_iter()
            .find(|k| cg.contains(k))
    };
    if let Some(c) = container {
        hints.push(format!("{c} container"));
    }
    if hints.is_empty() {
        "none".into()
    } else {
        hints.join(", ")
    }
}

/// `sys.info`.
#[derive(Debug, Clone, Copy)]
pub struct Info;

impl Action for Info {
    type Args = NoArgs;

    fn meta(&self) -> Meta {
        Meta {
            tool: "sys",
            name: "info",
            summary: "What this machine is: OS, kernel, hostname, architecture, CPU, memory, virtualisation",
            effects: &[EffectKind::Read],
            reversibility: Reversibility::ReadOnly,
            output: &[
                ("hostname", ColumnKind::Text),
                ("os", ColumnKind::Text),
                ("os_id", ColumnKind::Text),
                ("os_version", ColumnKind::Text),
                ("kernel", ColumnKind::Text),
                ("kernel_build", ColumnKind::Text),
                ("arch", ColumnKind::Text),
                ("cpu_model", ColumnKind::Text),
                ("cores", ColumnKind::Int),
                ("memory", ColumnKind::Bytes),
                ("virtualization", ColumnKind::Text),
                ("uptime", ColumnKind::Duration),
            ],
        }
    }

    fn effects(&self, _: &NoArgs, _: &Ctx<'_>) -> Result<Vec<Effect>> {
        Ok(system_read())
    }

    fn execute(&self, _: &NoArgs, _: &Ctx<'_>, _: &mut Recorder<'_>) -> Result<Output> {
        let os = std::fs::read_to_string("/etc/os-release")
            .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
            .map(|s| parse_os_release(&s))
            .unwrap_or_default();
        let [sysname, host, release, version, machine] = uname().unwrap_or_default();
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let model = parse_cpu_model(&cpuinfo);
        let mem = meminfo()?.get("MemTotal").copied().unwrap_or(0);
        let os_name = os
            .get("PRETTY_NAME")
            .or_else(|| os.get("NAME"))
            .cloned()
            .unwrap_or_else(|| sysname.clone());
        let text = |v: Option<&String>| v.map(|s| json!(s)).unwrap_or(Value::Null);
        let virt = virtualization(&cpuinfo);
        let cores = cores();
        let summary = format!(
            "{os_name}, {sysname} {release} on {machine}; {} ({cores} core{}), {} memory; host {host}; virtualization: {virt}",
            model.as_deref().unwrap_or("unknown CPU"),
            if cores == 1 { "" } else { "s" },
            human_bytes(mem),
        );
        let r = row([
            ("hostname", json!(host)),
            ("os", json!(os_name)),
            ("os_id", text(os.get("ID"))),
            (
                "os_version",
                text(os.get("VERSION_ID").or_else(|| os.get("BUILD_ID"))),
            ),
            ("kernel", json!(release)),
            ("kernel_build", json!(version)),
            ("arch", json!(machine)),
            ("cpu_model", model.map(|m| json!(m)).unwrap_or(Value::Null)),
            ("cores", json!(cores)),
            ("memory", json!(mem)),
            ("virtualization", json!(virt)),
            (
                "uptime",
                json!(uptime_secs().map(f64::floor).unwrap_or(0.0)),
            ),
        ]);
        Ok(Output::table(Vec::new(), vec![r]).with_summary(summary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_of_this_machine() {
        let s = r#"PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
# a comment
HOME_URL='https://www.debian.org/'
"#;
        let m = parse_os_release(s);
        assert_eq!(m["PRETTY_NAME"], "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(m["ID"], "debian");
        assert_eq!(m["VERSION_ID"], "12");
        assert_eq!(m["HOME_URL"], "https://www.debian.org/");
        assert_eq!(m.len(), 7);
    }

    #[test]
    fn cpu_models() {
        let x86 = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel\t\t: 143\nmodel name\t: Intel(R) Xeon(R) Processor\n";
        assert_eq!(
            parse_cpu_model(x86).as_deref(),
            Some("Intel(R) Xeon(R) Processor")
        );
        let rpi = "processor\t: 0\nBogoMIPS\t: 108.00\n\nHardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n";
        assert_eq!(
            parse_cpu_model(rpi).as_deref(),
            Some("Raspberry Pi 4 Model B Rev 1.4")
        );
        assert_eq!(parse_cpu_model(""), None);
    }

    #[test]
    fn uname_answers() {
        let u = uname().unwrap();
        assert_eq!(u[0], "Linux");
        assert!(!u[2].is_empty() && !u[4].is_empty());
    }
}
