using System;
using BackingChain.Chain;
using BackingChain.Internal;
using BackingChain.Sources;
using BackingChain.Trust;

namespace BackingChain.Tests.Sources;

/// <summary>The URL normal form trusted prefixes are compared in, and the names that count as http images.</summary>
public sealed class HttpUrlTests
{
    [Theory]
    [InlineData("http://h/images/a.qcow2", "http://h/images/a.qcow2")]
    [InlineData("HTTP://H.Example.ORG/Images/a", "http://h.example.org/Images/a")]
    [InlineData("http://h:80/a", "http://h/a")]
    [InlineData("https://h:443/a", "https://h/a")]
    [InlineData("http://h:0080/a", "http://h/a")]
    [InlineData("http://h:443/a", "http://h:443/a")]
    [InlineData("https://h:80/a", "https://h:80/a")]
    [InlineData("http://h:/a", "http://h/a")]
    [InlineData("http://h", "http://h/")]
    [InlineData("http://h?x=1", "http://h/?x=1")]
    [InlineData("http://h./a", "http://h/a")]
    [InlineData("http://h/images/../secret", "http://h/secret")]
    [InlineData("http://h/images/./a/../b", "http://h/images/b")]
    [InlineData("http://h/../../../etc/passwd", "http://h/etc/passwd")]
    [InlineData("http://h/images/..", "http://h/")]
    [InlineData("http://h/images/.", "http://h/images/")]
    [InlineData("http://h/images/%2E%2E/secret", "http://h/secret")]
    [InlineData("http://h/images/%2e./secret", "http://h/secret")]
    [InlineData("http://h/%7Euser/%41%62c", "http://h/~user/Abc")]
    [InlineData("http://h/a%20b%c3%a9", "http://h/a%20b%C3%A9")]
    [InlineData("http://h/a#frag", "http://h/a")]
    [InlineData("http://h/a?q=%2f..", "http://h/a?q=%2F..")]
    [InlineData("http://[::1]:8080/a", "http://[::1]:8080/a")]
    [InlineData("http://[FE80::1]/a", "http://[fe80::1]/a")]
    public void Normal_forms(string url, string expected)
    {
        Assert.True(HttpUrl.TryNormalize(url, out string normalized, out string? error), error);
        Assert.Equal(expected, normalized);
    }

    [Theory]
    [InlineData("http://user@h/a", "userinfo")]
    [InlineData("http://user:pw@h/a", "userinfo")]
    [InlineData("http://h@evil/a", "userinfo")]
    [InlineData("http://h/images\\..\\secret", "backslash")]
    [InlineData("http://h\\evil/a", "backslash")]
    [InlineData("http://h/images/..%2Fsecret", "encoded slash")]
    [InlineData("http://h/images/%2f", "encoded slash")]
    [InlineData("http://h/images/%5C..", "encoded slash")]
    [InlineData("http://h/a%00", "NUL")]
    [InlineData("http://h/a%zz", "percent-escape")]
    [InlineData("http://h/a%4", "percent-escape")]
    [InlineData("http://h/a b", "space")]
    [InlineData("http://h/é", "non-ASCII")]
    [InlineData("ftp://h/a", "scheme")]
    [InlineData("http:/h/a", "no scheme")]
    [InlineData("h/a", "no scheme")]
    [InlineData("http:///a", "no host")]
    [InlineData("http://h:99999/a", "port")]
    [InlineData("http://h:0/a", "port")]
    [InlineData("http://h:8o/a", "port")]
    [InlineData("http://h%2e/a", "host")]
    [InlineData("http://[::1/a", "IPv6")]
    public void Refused_spellings(string url, string why)
    {
        Assert.False(HttpUrl.TryNormalize(url, out _, out string? error));
        Assert.Contains(why, error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("http://h/images/a.qcow2", "http://h/images/", true)]
    [InlineData("http://h/images/a.qcow2", "http://h/images", true)]
    [InlineData("http://h/images", "http://h/images", true)]
    [InlineData("http://h/images/sub/a.qcow2", "http://h/images/", true)]
    [InlineData("http://h/images/x/../a.qcow2", "http://h/images/", true)]
    [InlineData("http://h/images/a.qcow2?sig=1", "http://h/images/", true)]
    [InlineData("http://H:80/images/a", "http://h/images/", true)]
    [InlineData("http://h/images/%61", "http://h/images/a", true)]
    [InlineData("http://h/images/../secret", "http://h/images/", false)]
    [InlineData("http://h/images/%2e%2e/secret", "http://h/images/", false)]
    [InlineData("http://h/images-old/a", "http://h/images", false)]
    [InlineData("http://h/imagesX", "http://h/images", false)]
    [InlineData("http://h/", "http://h/images/", false)]
    [InlineData("http://h.evil/images/a", "http://h/images/", false)]
    [InlineData("http://h:8080/images/a", "http://h/images/", false)]
    [InlineData("https://h/images/a", "http://h/images/", false)]
    [InlineData("http://h/images/a?x=2", "http://h/images/a?x=1", false)]
    [InlineData("http://h/images/a?x=1", "http://h/images/a?x=1", true)]
    public void Prefixes_cover_whole_path_segments(string url, string prefix, bool under)
    {
        Assert.True(HttpUrl.TryNormalize(url, out string normalUrl, out _));
        var policy = new TrustPolicy { TrustedUrlPrefixes = [prefix] };
        Assert.Equal(under, policy.IsUrlTrusted(normalUrl));
    }

    [Fact]
    public void The_policy_keeps_prefixes_in_normal_form_and_refuses_unusable_ones()
    {
        var policy = new TrustPolicy { TrustedUrlPrefixes = ["HTTPS://Store.Example:443/a/./b/"] };
        Assert.Equal("https://store.example/a/b/", Assert.Single(policy.TrustedUrlPrefixes));
        Assert.Empty(new TrustPolicy().TrustedUrlPrefixes);

        foreach (string bad in new[] { "/srv/images", "images/", "ftp://h/", "http://u@h/", "http://h/a%2Fb/", "" })
        {
            ArgumentException ex = Assert.Throws<ArgumentException>(() => new TrustPolicy { TrustedUrlPrefixes = [bad] });
            Assert.Contains("trusted URL prefix", ex.Message, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("http://h/a.qcow2", "http://h/a.qcow2")]
    [InlineData("https://h/a.qcow2", "https://h/a.qcow2")]
    [InlineData("json:{\"file.driver\":\"http\",\"file.url\":\"http://h/a\"}", "http://h/a")]
    [InlineData("json:{\"file.url\":\"https://h/a\",\"file.driver\":\"https\"}", "https://h/a")]
    [InlineData("json:{\"file\":{\"driver\":\"https\",\"url\":\"https://h/a\"}}", "https://h/a")]
    [InlineData("json: { \"file\" : { \"url\" : \"http://h/a\" , \"driver\" : \"http\" } } ", "http://h/a")]
    public void Http_names(string name, string url)
    {
        Assert.True(HttpReferences.TryGetUrl(name, out string found));
        Assert.Equal(url, found);
        var reference = new ImageReference(name, ReferenceRole.BackingFile, null, name.StartsWith("json:", StringComparison.Ordinal) ? ReferenceKind.Json : ReferenceKind.Protocol, name);
        Assert.True(new HttpImageSourceProvider(new System.Net.Http.HttpClient()).CanOpen(reference));
    }

    [Theory]
    [InlineData("HTTP://h/a")]
    [InlineData("ftp://h/a")]
    [InlineData("nbd://h/a")]
    [InlineData("/srv/http://h/a")]
    [InlineData("json:{\"file.driver\":\"http\",\"file.url\":\"http://h/a\",\"driver\":\"qcow2\"}")]
    [InlineData("json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"http\",\"url\":\"http://h/a\"}}")]
    [InlineData("json:{\"file.driver\":\"http\",\"file.url\":\"http://h/a\",\"file.url\":\"http://evil/a\"}")]
    [InlineData("json:{\"file\":{\"driver\":\"http\",\"url\":\"http://h/a\",\"cookie\":\"x\"}}")]
    [InlineData("json:{\"file\":{\"driver\":\"http\",\"url\":\"http://h/a\"},\"file.url\":\"http://h/b\"}")]
    [InlineData("json:{\"file.driver\":\"https\",\"file.url\":\"http://h/a\"}")]
    [InlineData("json:{\"file.driver\":\"file\",\"file.filename\":\"/etc/passwd\"}")]
    [InlineData("json:{\"file.driver\":\"http\",\"file.url\":[\"http://h/a\"]}")]
    [InlineData("json:{\"file.driver\":\"http\",\"file.url\":\"http://h/a\"} x")]
    [InlineData("json:{\"file.driver\":\"http\",\"file.url\":\"http://h/a\"")]
    [InlineData("json:{\"file.driver\":\"http\" /* c */,\"file.url\":\"http://h/a\"}")]
    [InlineData("json:[]")]
    public void Other_names_are_not_http(string name)
    {
        Assert.False(HttpReferences.TryGetUrl(name, out _));
        var reference = new ImageReference(name, ReferenceRole.BackingFile, null, QemuPaths.Classify(name), name);
        Assert.False(new HttpImageSourceProvider(new System.Net.Http.HttpClient()).CanOpen(reference));
    }

    [Fact]
    public void A_relative_name_in_an_image_read_over_http_resolves_against_its_url_as_qemu_does()
    {
        ImageReference relative = QemuPaths.ToReference("http://h/images/top.qcow2", "base.qcow2", ReferenceRole.BackingFile, "qcow2");
        Assert.Equal("http://h/images/base.qcow2", relative.FullName);
        Assert.False(relative.IsLocalPath);

        // Verbatim, as qemu forms full-backing-filename; the trust check normalises it.
        ImageReference climbing = QemuPaths.ToReference("http://h/images/top.qcow2", "../secret/base.qcow2", ReferenceRole.BackingFile, "qcow2");
        Assert.Equal("http://h/images/../secret/base.qcow2", climbing.FullName);

        ImageReference own = QemuPaths.ToReference("http://h/images/top.qcow2", "https://other/x.qcow2", ReferenceRole.BackingFile, "qcow2");
        Assert.Equal("https://other/x.qcow2", own.FullName);

        // An absolute name is a local path, in qemu too.
        ImageReference absolute = QemuPaths.ToReference("http://h/images/top.qcow2", "/etc/passwd", ReferenceRole.BackingFile, null);
        Assert.True(absolute.IsLocalPath);
    }
}
