//! Trust policy documents and the trust store on disk, as notation lays them out (digest §7).
