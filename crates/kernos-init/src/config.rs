//! The image's config (`/etc/kernos/init.toml`, written by `scripts/build-image`) and the
//! kernel command line's `kernos.*` overrides, so one image boots with different addresses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

/// Where the image keeps the config.
pub const CONFIG_PATH: &str = "/etc/kernos/init.toml";

/// Everything PID 1 is told.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitConfig {
    /// The machine's name.
    #[serde(default = "default_hostname")]
    pub hostname: String,
    /// Kernel modules to load, by name (dependencies come from `modules.dep`).
    #[serde(default)]
    pub modules: Vec<String>,
    /// The clock source to select (`tsc`, `hpet`, `acpi_pm`…); empty keeps the kernel's choice.
    #[serde(default)]
    pub clocksource: String,
    /// The persistent disk for the data directory; formatted on first boot if it is empty.
    #[serde(default)]
    pub data_disk: Option<PathBuf>,
    /// The data directory (mounted from `data_disk`, else a tmpfs).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// The mkfs.ext4 program in the image.
    #[serde(default = "default_mkfs")]
    pub mkfs: PathBuf,
    /// The first NIC's address.
    #[serde(default)]
    pub network: Network,
    /// The Kernos daemon.
    pub daemon: Service,
    /// Other services to supervise.
    #[serde(default)]
    pub services: Vec<Service>,
    /// Seconds a fatal boot error stays on the console before the machine reboots.
    #[serde(default = "default_fatal_delay")]
    pub fatal_delay_s: u64,
}

/// A static address.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// The interface; empty picks the first one that is not loopback.
    #[serde(default)]
    pub interface: String,
    /// `a.b.c.d/prefix`; empty leaves the NIC down.
    #[serde(default)]
    pub address: String,
    /// The default gateway, if any.
    #[serde(default)]
    pub gateway: String,
}

/// A supervised program.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Its name in logs and in the status file.
    #[serde(default = "default_service_name")]
    pub name: String,
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Environment (besides PATH and the `KERNOS_INIT_DIR` the daemon is given).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Start it again when it ends (with backoff).
    #[serde(default = "yes")]
    pub restart: bool,
    /// It speaks the sd_notify protocol: it gets `NOTIFY_SOCKET`, says `READY=1` once it
    /// serves (the boot record's "ready" time), and is restarted if it is not ready within
    /// `ready_timeout_s`.
    #[serde(default)]
    pub notify: bool,
    /// With `notify`: seconds it has to become ready.
    #[serde(default = "default_ready_timeout")]
    pub ready_timeout_s: u64,
    /// With `notify`: it gets `WATCHDOG_USEC` and must say `WATCHDOG=1` at least this often
    /// once ready, else it is killed and restarted (a hung daemon is a dead daemon). 0: off.
    #[serde(default)]
    pub watchdog_s: u64,
}

fn default_hostname() -> String {
    "kernos".into()
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/kernos")
}
fn default_mkfs() -> PathBuf {
    PathBuf::from("/sbin/mkfs.ext4")
}
fn default_service_name() -> String {
    "service".into()
}
fn default_ready_timeout() -> u64 {
    120
}
fn default_fatal_delay() -> u64 {
    10
}
fn yes() -> bool {
    true
}

impl InitConfig {
    /// Reads the config file.
    pub fn load(path: &Path) -> Result<InitConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the image config {}", path.display()))?;
        Self::parse(&text)
            .with_context(|| format!("the image config {} is invalid", path.display()))
    }

    /// Parses config text.
    pub fn parse(text: &str) -> Result<InitConfig> {
        let c: InitConfig = toml::from_str(text)?;
        if c.daemon.argv.is_empty() {
            anyhow::bail!("[daemon] argv is empty: name the kernos binary and `serve`");
        }
        Ok(c)
    }

    /// Applies `kernos.ip=`, `kernos.gw=`, `kernos.iface=`, `kernos.hostname=`,
    /// `kernos.disk=` (`none` for no disk) and `kernos.fatal_delay=` (seconds) from the
    /// kernel command line.
    pub fn apply_cmdline(&mut self, cmdline: &str) {
        for word in cmdline.split_whitespace() {
            let Some((k, v)) = word.split_once('=') else {
                continue;
            };
            match k {
                "kernos.ip" => self.network.address = v.into(),
                "kernos.gw" => self.network.gateway = v.into(),
                "kernos.iface" => self.network.interface = v.into(),
                "kernos.hostname" => self.hostname = v.into(),
                "kernos.disk" if v == "none" => self.data_disk = None,
                "kernos.disk" => self.data_disk = Some(PathBuf::from(v)),
                "kernos.fatal_delay" => {
                    if let Ok(s) = v.parse() {
                        self.fatal_delay_s = s;
                    }
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_the_command_line_overrides() {
        let mut c = InitConfig::parse(
            r#"
modules = ["virtio_net"]
data_disk = "/dev/vda"
[network]
address = "10.0.2.15/24"
[daemon]
argv = ["/usr/bin/kernos", "serve"]
[[services]]
name = "x"
argv = ["/bin/x"]
restart = false
"#,
        )
        .unwrap();
        assert_eq!(c.hostname, "kernos");
        assert!(!c.services[0].restart);
        assert!(c.daemon.restart);
        assert_eq!(c.fatal_delay_s, 10);
        assert!(!c.daemon.notify);
        c.apply_cmdline("console=ttyS0 kernos.ip=10.0.3.9/24 kernos.gw=10.0.3.1 kernos.disk=none kernos.fatal_delay=2");
        assert_eq!(c.fatal_delay_s, 2);
        assert_eq!(c.network.address, "10.0.3.9/24");
        assert_eq!(c.network.gateway, "10.0.3.1");
        assert_eq!(c.data_disk, None);
    }

    #[test]
    fn refuses_unknown_settings_and_an_empty_daemon() {
        assert!(InitConfig::parse("[daemon]\nargv = []\n").is_err());
        assert!(InitConfig::parse("hostnme = \"x\"\n[daemon]\nargv = [\"k\"]\n").is_err());
    }
}
