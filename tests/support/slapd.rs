//! A throwaway OpenLDAP `slapd` on free loopback ports (plain `ldap://`, which offers
//! StartTLS, and `ldaps://`), with a certificate from a test CA made by the `openssl`
//! command line, for the LDAP connector's tests. It panics rather than skip when `slapd`
//! is missing (a skipped suite would pass silently); `scripts/test` installs it.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ldap3::{LdapConnAsync, Mod};
use portcullis::model::{
    ButtonIcon, ConnectorRecord, LdapGroupSearch, LdapServiceAccount, LdapUpstream, LdapUserSearch, Upstream,
};

use crate::certificates::test_certificates;

pub const SUFFIX: &str = "dc=example,dc=org";
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=org";
pub const ADMIN_PASSWORD: &str = "admin-secret";

/// A directory connector `corp` to `url` trusting `ca_pem`, letting in members of `staff`,
/// its groups prefixed `ldap:`, re-checked at every refresh.
pub fn connector(url: String, start_tls: bool, ca_pem: Option<String>) -> ConnectorRecord {
    ConnectorRecord {
        name: "corp".into(),
        display_name: "Corp directory".into(),
        icon: ButtonIcon::Directory,
        upstream: Upstream::Ldap(LdapUpstream {
            url,
            start_tls,
            root_ca_pem: ca_pem,
            service_account: Some(LdapServiceAccount { dn: ADMIN_DN.into(), password: ADMIN_PASSWORD.into() }),
            username_prompt: Some("Corp username".into()),
            user_search: LdapUserSearch {
                base_dn: format!("ou=people,{SUFFIX}"),
                filter: "(objectClass=inetOrgPerson)".into(),
                username_attr: "uid".into(),
                id_attr: "uid".into(),
                email_attr: "mail".into(),
                name_attr: "cn".into(),
            },
            group_search: Some(LdapGroupSearch {
                base_dn: format!("ou=groups,{SUFFIX}"),
                filter: "(objectClass=groupOfNames)".into(),
                user_matchers: vec![("DN".into(), "member".into())],
                name_attr: "cn".into(),
            }),
        }),
        group_prefix: "ldap:".into(),
        allowed_groups: vec!["staff".into()],
        refresh_interval: 0,
        login_hint_domains: vec![],
    }
}

pub struct Slapd {
    child: Option<Child>,
    /// The plain (StartTLS-capable) and the TLS port.
    pub port: u16,
    pub tls_port: u16,
    dir: PathBuf,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

impl Slapd {
    /// A fresh directory under `dc=example,dc=org`, its admin `cn=admin` with password
    /// [`ADMIN_PASSWORD`], holding only its base entry and `ou=people` and `ou=groups`.
    pub async fn start() -> Self {
        let (port, tls_port) = (free_port(), free_port());
        let dir = std::env::temp_dir().join(format!("portcullis-slapd-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).expect("a data directory");
        test_certificates(&dir);
        let d = dir.display();
        let config = format!(
            "include /etc/ldap/schema/core.schema\ninclude /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\ninclude /etc/ldap/schema/nis.schema\n\
             modulepath /usr/lib/ldap\nmoduleload back_mdb\npidfile {d}/slapd.pid\n\
             TLSCACertificateFile {d}/ca.pem\nTLSCertificateFile {d}/server.pem\nTLSCertificateKeyFile {d}/server.key\n\
             database mdb\nmaxsize 10485760\nsuffix \"{SUFFIX}\"\nrootdn \"{ADMIN_DN}\"\nrootpw {ADMIN_PASSWORD}\n\
             directory {d}/data\n"
        );
        std::fs::write(dir.join("slapd.conf"), config).expect("slapd.conf");
        let mut slapd = Slapd { child: None, port, tls_port, dir };
        slapd.restart();
        slapd
            .add(SUFFIX, &[("objectClass", &["dcObject", "organization"]), ("o", &["Example"]), ("dc", &["example"])])
            .await;
        for ou in ["people", "groups"] {
            let dn = format!("ou={ou},{SUFFIX}");
            slapd.add(&dn, &[("objectClass", &["organizationalUnit"]), ("ou", &[ou])]).await;
        }
        slapd
    }

    /// (Re)starts the server on the same ports and data.
    pub fn restart(&mut self) {
        let urls = format!("ldap://127.0.0.1:{}/ ldaps://127.0.0.1:{}/", self.port, self.tls_port);
        let child = Command::new("/usr/sbin/slapd")
            .arg("-f")
            .arg(self.dir.join("slapd.conf"))
            .args(["-h", &urls, "-d", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("slapd must be installed (scripts/test installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.tls_port)).is_err() {
            assert!(Instant::now() < deadline, "slapd did not start listening");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server abruptly, as a crash or a network cut would.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The test CA's certificate, PEM.
    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(self.dir.join("ca.pem")).expect("the CA")
    }

    async fn admin(&self) -> ldap3::Ldap {
        let (driver, mut ldap) =
            LdapConnAsync::new(&format!("ldap://127.0.0.1:{}", self.port)).await.expect("a connection to slapd");
        ldap3::drive!(driver);
        ldap.simple_bind(ADMIN_DN, ADMIN_PASSWORD).await.unwrap().success().expect("the admin bind");
        ldap
    }

    /// Adds entry `dn` with `attributes`.
    pub async fn add(&self, dn: &str, attributes: &[(&str, &[&str])]) {
        let attributes: Vec<(&str, std::collections::HashSet<&str>)> =
            attributes.iter().map(|(name, values)| (*name, values.iter().copied().collect())).collect();
        self.admin().await.add(dn, attributes).await.unwrap().success().unwrap_or_else(|e| panic!("add {dn}: {e}"));
    }

    /// A person `uid=<uid>,ou=people` with password `password`.
    pub async fn add_person(&self, uid: &str, name: &str, password: &str) {
        let dn = format!("uid={uid},ou=people,{SUFFIX}");
        let mail = format!("{uid}@example.org");
        let attributes: [(&str, &[&str]); 6] = [
            ("objectClass", &["inetOrgPerson"]),
            ("uid", &[uid]),
            ("cn", &[name]),
            ("sn", &[name]),
            ("mail", &[&mail]),
            ("userPassword", &[password]),
        ];
        self.add(&dn, &attributes).await;
    }

    /// A group `cn=<cn>,ou=groups` of the people `uids`, and of the admin (`groupOfNames`
    /// needs a member, so that everyone can leave it).
    pub async fn add_group(&self, cn: &str, uids: &[&str]) {
        let mut members: Vec<String> = uids.iter().map(|uid| format!("uid={uid},ou=people,{SUFFIX}")).collect();
        members.push(ADMIN_DN.to_owned());
        let members: Vec<&str> = members.iter().map(String::as_str).collect();
        let dn = format!("cn={cn},ou=groups,{SUFFIX}");
        self.add(&dn, &[("objectClass", &["groupOfNames"]), ("cn", &[cn]), ("member", &members)]).await;
    }

    /// Removes person `uid` from group `cn`.
    pub async fn leave_group(&self, cn: &str, uid: &str) {
        let dn = format!("cn={cn},ou=groups,{SUFFIX}");
        let member = format!("uid={uid},ou=people,{SUFFIX}");
        let change = Mod::Delete("member", [member.as_str()].into_iter().collect());
        self.admin().await.modify(&dn, vec![change]).await.unwrap().success().expect("the modify");
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
