namespace BackingChain.Chain;

/// <summary>What happened to one reference at the gate: whether the policy let it be opened, and what opening found.</summary>
public enum ReferenceOutcome
{
    /// <summary>The walk ended before this reference was put to the gate (the chain was too deep, or an earlier step failed).</summary>
    NotAsked,

    /// <summary>
    /// No configured source can open a name of this kind (a protocol or <c>json:</c> name, a Windows path, or a
    /// relative name with no directory to be relative to), so it was not followed.
    /// </summary>
    NotFollowed,

    /// <summary>
    /// The policy did not allow it to be opened. Nothing was read from it; the answer is the same whether or not the
    /// file exists (no existence oracle), and, with pinned digests, whether it was absent, too large or mismatching.
    /// </summary>
    Refused,

    /// <summary>The policy allowed it, and there is no such file ("No such file or directory", as qemu-img says).</summary>
    Missing,

    /// <summary>The policy allowed it, and it could not be opened: permission denied, not a regular file or block device, or an I/O error.</summary>
    Unreadable,

    /// <summary>The policy allowed it and it was opened.</summary>
    Opened,
}
