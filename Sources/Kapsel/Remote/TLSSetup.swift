import Crypto
import FoundationEssentials
import KapselWire
import NIOCore
import NIOSSL
import Synchronization
import X509

/// The TLS certificate a host presents to daemons connecting over `tls+tcp://`.
public enum HostCertificate: Sendable, Hashable {
    /// A fresh key and self-signed certificate, made when the daemons start and used
    /// for that pool only. The private key never leaves the host's memory; daemons pin
    /// the certificate's SHA-256 fingerprint, which their launch environment carries.
    case generated
    /// Your certificate chain (leaf first) and its private key, as PEM text. Daemons
    /// verify the chain against `RemoteSettings.tlsCertificateAuthority`.
    case pem(chain: String, privateKey: String)
    /// The same, read from PEM files.
    case files(chain: String, privateKey: String)
}

/// How a daemon checks the host's TLS certificate.
public enum DaemonTLSTrust: Sendable, Hashable {
    /// Accept exactly the certificate with this SHA-256 fingerprint (hex of its DER).
    case pinnedCertificate(sha256: String)
    /// Accept a chain that this CA certificate (a PEM file on the daemon's machine)
    /// signed, for the host name in the URL.
    case certificateAuthority(path: String)
}

/// The host's TLS side: its server context and what daemons must trust.
struct HostTLS: Sendable {
    let context: NIOSSLContext
    let daemonTrust: DaemonTLSTrust

    /// Makes the context for `certificate`; `authority` is the CA path daemons use with
    /// a certificate of your own.
    static func make(_ certificate: HostCertificate, authority: String?) throws(DaemonsError) -> HostTLS {
        do {
            let chain: [NIOSSLCertificate]
            let key: NIOSSLPrivateKey
            var trust: DaemonTLSTrust
            switch certificate {
            case .generated:
                let made = try makeSelfSigned()
                chain = [made.certificate]
                key = made.key
                trust = .pinnedCertificate(sha256: try fingerprint(of: made.certificate))
            case .pem(let chainText, let keyText):
                chain = try NIOSSLCertificate.fromPEMBytes(Array(chainText.utf8))
                key = try NIOSSLPrivateKey(bytes: Array(keyText.utf8), format: .pem)
                guard let authority else { throw DaemonsError("a certificate of your own needs RemoteSettings.tlsCertificateAuthority: the CA file daemons verify it against") }
                trust = .certificateAuthority(path: authority)
            case .files(let chainPath, let keyPath):
                chain = try NIOSSLCertificate.fromPEMFile(chainPath)
                key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
                guard let authority else { throw DaemonsError("a certificate of your own needs RemoteSettings.tlsCertificateAuthority: the CA file daemons verify it against") }
                trust = .certificateAuthority(path: authority)
            }
            guard !chain.isEmpty else { throw DaemonsError("the TLS certificate chain is empty") }
            let configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
            return HostTLS(context: try NIOSSLContext(configuration: configuration), daemonTrust: trust)
        } catch let error as DaemonsError {
            throw error
        } catch {
            throw DaemonsError("cannot set up TLS: \(error)")
        }
    }

    /// A P-256 key and a certificate it signs itself, valid from five minutes ago for 30 days.
    private static func makeSelfSigned() throws -> (certificate: NIOSSLCertificate, key: NIOSSLPrivateKey) {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName("Kapsel host") }
        let now = Date()
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            SubjectAlternativeNames([.dnsName("localhost")])
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: Certificate.PublicKey(key.publicKey),
            notValidBefore: now - 300, notValidAfter: now + 30 * 86_400, issuer: name, subject: name,
            signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions, issuerPrivateKey: Certificate.PrivateKey(key)
        )
        let pem = try certificate.serializeAsPEM().pemString
        return (
            try NIOSSLCertificate(bytes: Array(pem.utf8), format: .pem),
            try NIOSSLPrivateKey(bytes: Array(key.pemRepresentation.utf8), format: .pem)
        )
    }
}

/// The SHA-256 fingerprint of a certificate's DER encoding, as lowercase hex.
func fingerprint(of certificate: NIOSSLCertificate) throws -> String {
    hexEncoded(SHA256.hash(data: try certificate.toDERBytes()))
}

/// A daemon's TLS client side for a host at `address`.
struct DaemonTLS {
    let context: NIOSSLContext
    let trust: DaemonTLSTrust
    let serverHostname: String?
    /// Set when the host presented a certificate other than the pinned one.
    let mismatch = CertificateMismatch()

    init(trust: DaemonTLSTrust, host: String) throws {
        var configuration = TLSConfiguration.makeClientConfiguration()
        switch trust {
        case .pinnedCertificate:
            // The pin replaces chain and name checks (the callback below).
            configuration.certificateVerification = .noHostnameVerification
        case .certificateAuthority(let path):
            configuration.trustRoots = .file(path)
            configuration.certificateVerification = .fullVerification
        }
        self.context = try NIOSSLContext(configuration: configuration)
        self.trust = trust
        let isAddress = host.contains(":") || host.allSatisfy { $0.isNumber || $0 == "." }
        self.serverHostname = isAddress ? nil : host
    }

    /// The handler to put first in the pipeline.
    func makeHandler() throws -> NIOSSLClientHandler {
        guard case .pinnedCertificate(let pin) = trust else {
            return try NIOSSLClientHandler(context: context, serverHostname: serverHostname)
        }
        let mismatch = self.mismatch
        return try NIOSSLClientHandler(context: context, serverHostname: serverHostname) { certificates, promise in
            do {
                guard let leaf = certificates.first else { throw DaemonsError("the host presented no certificate") }
                let presented = try fingerprint(of: leaf)
                if presented == pin.lowercased() {
                    promise.succeed(.certificateVerified)
                } else {
                    mismatch.record("the host's TLS certificate has fingerprint sha256:\(presented), not the pinned sha256:\(pin)")
                    promise.succeed(.failed)
                }
            } catch {
                mismatch.record("cannot read the host's TLS certificate: \(error)")
                promise.succeed(.failed)
            }
        }
    }
}

/// Why the host's certificate was refused, recorded by the verification callback for
/// the error the daemon exits with.
final class CertificateMismatch: Sendable {
    private let reason = Mutex<String?>(nil)

    func record(_ text: String) {
        reason.withLock { $0 = text }
    }

    var recorded: String? { reason.withLock { $0 } }
}
